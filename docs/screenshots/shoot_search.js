// Screenshots of a search case in a generated Allure 2 report, as a reader sees it in Chromium.
//   node docs/screenshots/shoot_search.js REPORT_DIR [OUT_DIR] [CASE_SUBSTRING]
// Needs puppeteer-core and Chromium as shoot.js does. Finds the search case by its "search.json"
// attachment (CASE_SUBSTRING narrows it by name) and its counterexamples by the
// simgate_counterexample_of label; writes search-*.png.
const fs = require('fs');
const path = require('path');
const {serve, launch, clickText, sleep} = require('./serve');
const puppeteer = require('puppeteer-core');

const report = path.resolve(process.argv[2] || 'reports/allure-report');
const out = path.resolve(process.argv[3] || path.join(__dirname));
const want = process.argv[4] || '';

const dir = path.join(report, 'data', 'test-cases');
const full = fs.readdirSync(dir).map(f => JSON.parse(fs.readFileSync(path.join(dir, f))));
const attachmentsOf = (r) => [r.testStage || {}, ...(r.afterStages || [])].flatMap(s => s.attachments || []);
const label = (r, name) => ((r.labels || []).find(l => l.name === name) || {}).value;

(async () => {
  const server = await serve(report);
  const base = `http://127.0.0.1:${server.address().port}/`;
  const browser = await launch(puppeteer);
  const page = await browser.newPage();
  const shots = [];
  async function shot(name, url, clicks = [], height = 1300, scrollTo = null, after = null) {
    await page.setViewport({width: 1400, height});
    await page.goto(base + url, {waitUntil: 'networkidle0'});
    await sleep(1500);
    for (const [selector, text] of clicks) await clickText(page, selector, text);
    if (after) await after();
    // Allure scrolls its panes, not the window: to the top, or to the named attachment
    await page.evaluate((scrollTo) => {
      document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; });
      if (scrollTo) {
        const rows = [...document.querySelectorAll('.attachment-row')];
        const at = rows.findIndex(e => e.innerText.includes(scrollTo));
        // the row before it at the top: the pane's header would hide the wanted row's title
        if (at >= 0) rows[Math.max(0, at - 1)].scrollIntoView();
      }
    }, scrollTo);
    await sleep(600);
    const file = path.join(out, name);
    await page.screenshot({path: file});
    shots.push(file);
  }
  const searched = full.filter(r => attachmentsOf(r).some(a => a.name === 'search.json') && r.name.includes(want));
  for (const r of searched.slice(0, 1)) {
    const stem = 'search-case';
    await shot(`${stem}.png`, `#testresult/${r.uid}`, [], 1400);
    await shot(`${stem}-boundary.png`, `#testresult/${r.uid}`, [['.attachment-row', 'search: failure boundary per axis']],
      1200, 'search: failure boundary per axis');
    await shot(`${stem}-map.png`, `#testresult/${r.uid}`, [['.attachment-row', 'search: 2-D map']], 1000, 'search: 2-D map');
    await shot(`${stem}-sensitivity.png`, `#testresult/${r.uid}`, [['.attachment-row', 'search: sensitivity']], 900,
      'search: sensitivity');
    await shot(`${stem}-certificate.png`, `#testresult/${r.uid}`, [['.attachment-row', 'search: envelope certificate']],
      1100, 'search: envelope certificate');
  }
  const counter = full.filter(r => label(r, 'simgate_counterexample_of') && r.name.includes(want) ||
    label(r, 'simgate_counterexample_of') && searched.some(s => label(s, 'simgate_case') === label(r, 'simgate_counterexample_of')));
  let video = null;
  if (counter.length) {
    const r = counter[0];
    await shot('search-counterexample.png', `#testresult/${r.uid}`, [['.attachment-row', 'how it ended'],
      ['.attachment-row', 'episode ']], 2000, null, async () => {
        video = await page.evaluate(async () => {
          const v = document.querySelector('video');
          if (!v) return null;
          v.pause(); v.currentTime = Math.max(0, v.duration - 0.5);
          await new Promise(r => setTimeout(r, 1500));
          return {ready: v.readyState, width: v.videoWidth, height: v.videoHeight, duration: v.duration};
        });
      });
    await shot('search-suites.png', '#suites', [['.node__title', label(r, 'parentSuite') || 'gate'],
      ['.node__title', label(r, 'suite') || 'search']], 1000);
  }
  console.log(JSON.stringify({searched: searched.map(r => r.name), counterexamples: counter.map(r => r.name), shots, video}));
  await browser.close();
  server.close();
})();
