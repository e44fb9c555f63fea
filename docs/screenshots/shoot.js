// Screenshots of a generated Allure 2 report, as a reader sees it in Chromium.
//   node docs/screenshots/shoot.js REPORT_DIR [OUT_DIR]      (docs/screenshots/shoot.sh does it all)
// Needs puppeteer-core (npm install, see shoot.sh) and Chromium at $CHROMIUM or /usr/bin/chromium.
// Serves REPORT_DIR itself on 127.0.0.1 (the multi-file report does not open from file://) and
// finds the results by name in the report's data/test-cases/*.json.
const fs = require('fs');
const path = require('path');
const {serve, launch, clickText, sleep} = require('./serve');
const puppeteer = require('puppeteer-core');

const report = path.resolve(process.argv[2] || 'reports/allure-report');
const out = path.resolve(process.argv[3] || path.join(__dirname));

function results() {
  const dir = path.join(report, 'data', 'test-cases');
  return fs.readdirSync(dir).map(f => JSON.parse(fs.readFileSync(path.join(dir, f))));
}

(async () => {
  const server = await serve(report);
  const base = `http://127.0.0.1:${server.address().port}/`;
  const browser = await launch(puppeteer);
  const page = await browser.newPage();
  await page.setViewport({width: 1400, height: 1000});
  const all = results();
  const find = (pred) => all.find(pred);
  const shots = [];
  async function shot(name, url, clicks = [], height = 1300, after = null) {
    await page.setViewport({width: 1400, height});
    await page.goto(base + url, {waitUntil: 'networkidle0'});
    await sleep(1500);
    for (const [selector, text, exclude] of clicks) await clickText(page, selector, text, exclude);
    if (after) await after();
    // Allure scrolls its panes, not the window: back to the top of each
    await page.evaluate(() => document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; }));
    await sleep(500);
    const file = path.join(out, name);
    await page.screenshot({path: file});
    shots.push(file);
  }
  await shot('allure-overview.png', '#', [], 1000);
  // a blocking category opened: a confirmed regression's if the run has one (a case that fails its
  // own requirement too is filed under "requirement not met"), else the first one there is
  await shot('allure-categories.png', '#categories', [['.node__title', 'Informational (gate: false)']], 1000,
    async () => {
      const titles = await page.$$eval('.node__title', els => els.map(e => e.innerText));
      const want = ['Blocks promotion: regression', 'Blocks promotion: requirement not met', 'Blocks promotion']
        .find(t => titles.some(x => x.includes(t)));
      if (want) await clickText(page, '.node__title', want);
    });
  // the blocked candidate's promotion result: its "why" page, with the overview page attached
  const overview = find(r => r.name.startsWith('promotion: ') && r.status !== 'passed') ||
    find(r => r.name.startsWith('promotion: '));
  if (overview) {
    await shot('allure-promotion-overview.png', `#testresult/${overview.uid}`,
      [['.attachment-row', 'promotion overview.html']], 1500);
    // the attached page itself, as the attachment's full-screen view shows it
    const full = JSON.parse(fs.readFileSync(path.join(report, 'data', 'test-cases', `${overview.uid}.json`)));
    const steps = [full.testStage || {}, ...(full.afterStages || [])];
    const html = steps.flatMap(s => s.attachments || []).find(a => a.name === 'promotion overview.html');
    if (html) await shot('promotion-overview-page.png', `data/attachments/${html.source}`, [], 2400);
  }
  // a Holm-confirmed regression (verdict.json, attached to the overview), preferably one whose case passed
  const caseOf = (r) => { const full = JSON.parse(fs.readFileSync(path.join(report, 'data', 'test-cases', `${r.uid}.json`)));
    return ((full.labels || []).find(l => l.name === 'simgate_case') || {}).value; };
  let alarms = [];
  if (overview) {
    const full = JSON.parse(fs.readFileSync(path.join(report, 'data', 'test-cases', `${overview.uid}.json`)));
    const v = (full.testStage.attachments || []).find(a => a.name === 'verdict.json');
    if (v) { const doc = JSON.parse(fs.readFileSync(path.join(report, 'data', 'attachments', v.source)));
      alarms = Object.values(doc.candidates || {}).flatMap(c => c.regression_alarms || []); }
  }
  // the first torque chart of the overview names the case whose torque speaks most against its candidate
  let torqueCase = null;
  if (overview) {
    const full = JSON.parse(fs.readFileSync(path.join(report, 'data', 'test-cases', `${overview.uid}.json`)));
    const chart = (full.testStage.attachments || []).find(a => a.name.startsWith('torque: '));
    if (chart) torqueCase = chart.name.slice('torque: '.length);
  }
  const confirmed = all.filter(r => alarms.includes(caseOf(r)));
  const regression = (torqueCase && all.find(r => caseOf(r) === torqueCase)) || confirmed[0];
  if (regression) await shot('allure-torque-regression.png', `#testresult/${regression.uid}`,
    [['.attachment-row', 'torque per joint']], 1700);
  const pushes = find(r => r.name.startsWith('quadruped_pushes') && r.status === 'failed') ||
    find(r => r.status === 'failed' && !r.name.startsWith('promotion'));
  let video = null;
  if (pushes) await shot('allure-failed-case.png', `#testresult/${pushes.uid}`,
    [['.attachment-row', 'failure modes'], ['.attachment-row', 'time to fall'], ['.attachment-row', 'how it ended'],
     ['.attachment-row', 'worst episode', 'how it ended']], 2900,
    async () => {  // show the end of the video: the fall, marked
      video = await page.evaluate(async () => {
        const v = document.querySelector('video');
        if (!v) return null;
        // the report's server answers no Range requests, so the video is not seekable from there
        // (currentTime falls back to 0): play it from a blob, which is
        const src = v.currentSrc || v.src;
        v.pause();
        v.src = URL.createObjectURL(await (await fetch(src)).blob());
        const event = (name, start) => new Promise(r => { v.addEventListener(name, r, {once: true}); start();
          setTimeout(r, 5000); });
        await event('loadeddata', () => v.load());
        await event('seeked', () => { v.currentTime = Math.max(0, v.duration - 0.5); });
        v.removeAttribute('controls');  // a paused video's controls would cover the burnt-in caption
        await new Promise(r => setTimeout(r, 1500));
        return {src, time: v.currentTime, ready: v.readyState, width: v.videoWidth, height: v.videoHeight, duration: v.duration};
      });
    });
  console.log(JSON.stringify({shots, video}));
  await browser.close();
  server.close();
})();
