// Screenshots of a search case in a generated Allure 2 report, as a reader sees it in Chromium.
//   node docs/screenshots/shoot_search.js REPORT_DIR [OUT_DIR] [CASE_SUBSTRING]
// Needs puppeteer-core and Chromium as shoot.js does. The report is made as docs/screenshots/shoot.sh
// makes its own (pytest, then `python -m simgate report`), but with scenarios/quadruped_search.yaml
// alone in the scenarios folder (policies quadruped-nominal and quadruped-robust). Finds the
// search cases by their "search.json" attachment (CASE_SUBSTRING narrows them by name) and a
// search's failing episodes by the steps of its case's result (a counterexample is a step,
// "counterexample: …", failed where the case gates on the envelope and the certificate did not
// pass; inside a region the certificate passes it is a skipped "example: …" step); writes
// search-*.png.
const fs = require('fs');
const path = require('path');
const {serve, launch, clickText, sleep} = require('./serve');
const puppeteer = require('puppeteer-core');

const report = path.resolve(process.argv[2] || 'reports/allure-report');
const out = path.resolve(process.argv[3] || path.join(__dirname));
const want = process.argv[4] || '';

const dir = path.join(report, 'data', 'test-cases');
const full = fs.readdirSync(dir).sort().map(f => JSON.parse(fs.readFileSync(path.join(dir, f))));
const stages = (r) => [r.testStage || {}, ...(r.afterStages || [])];
const attachmentsOf = (r) => stages(r).flatMap(s => s.attachments || []);
const stepsOf = (s) => (s.steps || []).flatMap(t => [t, ...stepsOf(t)]);
const label = (r, name) => ((r.labels || []).find(l => l.name === name) || {}).value;
// a search's failing episode: "counterexample: …", "counterexample (informational): …" or "example: …"
const isExample = (s) => /^(counterexample( \(informational\))?|example): /.test(s.name || '');

(async () => {
  const server = await serve(report);
  const base = `http://127.0.0.1:${server.address().port}/`;
  const browser = await launch(puppeteer);
  const page = await browser.newPage();
  const shots = [];
  // scroll: a function run in the page once every pane is back at its top (Allure scrolls its
  // panes, not the window), or the name of an attachment to bring to the top
  async function shot(name, url, clicks = [], height = 1300, scroll = null, after = null) {
    await page.setViewport({width: 1400, height});
    // a fresh page each time: going to the same #testresult/… again is a same-document navigation
    // that keeps the attachments the previous shot opened (each shot would show the previous one)
    await page.goto('about:blank');
    await page.goto(base + url, {waitUntil: 'networkidle0'});
    await sleep(1500);
    for (const [selector, text] of clicks) await clickText(page, selector, text);
    if (after) await after();
    await page.evaluate((scrollTo, fn) => {
      document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; });
      if (fn) return (0, eval)(`(${fn})`)();
      if (scrollTo) {
        const rows = [...document.querySelectorAll('.attachment-row')];
        const at = rows.findIndex(e => e.innerText.includes(scrollTo));
        // the row before it at the top: the pane's header would hide the wanted row's title
        if (at >= 0) rows[Math.max(0, at - 1)].scrollIntoView();
      }
    }, typeof scroll === 'string' ? scroll : null, typeof scroll === 'function' ? scroll.toString() : null);
    await sleep(600);
    const file = path.join(out, name);
    await page.screenshot({path: file});
    shots.push(file);
  }
  // opens the step named `name` (its title, not the stage's around it), its trace (the replay
  // note: parameters, failure mode, shrinking, replay command) and its attachments named in `open`
  async function openStep(name, open = []) {
    const ok = await page.evaluate((name, open) => {
      const title = [...document.querySelectorAll('.step__name')].find(e => e.innerText.trim() === name);
      if (!title) return false;
      const step = title.closest('.step');
      if (!step.classList.contains('step_expanded')) title.closest('.step__title').click();
      return true;
    }, name, open);
    if (!ok) { console.log('step not found:', name); return false; }
    await sleep(800);
    await page.evaluate((name, open) => {
      const step = [...document.querySelectorAll('.step__name')].find(e => e.innerText.trim() === name).closest('.step');
      const toggle = step.querySelector('.status-details__trace-toggle');
      if (toggle) toggle.click();
      // the trace is one unbroken line per row (Allure scrolls it sideways): wrapped, so the replay
      // command shows whole
      for (const trace of step.querySelectorAll('.status-details__trace')) {
        trace.style.whiteSpace = 'pre-wrap'; trace.style.overflowWrap = 'anywhere';
      }
      for (const want of open) {
        const row = [...step.querySelectorAll('.attachment-row')].find(e => e.innerText.includes(want));
        if (row) row.click();
      }
    }, name, open);
    await sleep(1500);
    return true;
  }

  const searches = full.filter(r => attachmentsOf(r).some(a => a.name === 'search.json'));
  const searched = searches.filter(r => r.name.includes(want));
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
  // the counterexample: a failed step first (one that counts against its policy), from the cases
  // CASE_SUBSTRING names, then from the other search cases
  const found = [...searched, ...searches.filter(r => !searched.includes(r))]
    .flatMap(r => stages(r).flatMap(stepsOf).filter(isExample).map(s => ({r, s})));
  const counter = [...found.filter(f => f.s.status === 'failed'), ...found.filter(f => f.s.status !== 'failed')];
  let picked = null;
  if (counter.length) {
    const {r, s} = counter[0];
    picked = {case: r.name, step: s.name, status: s.status};
    await shot('search-counterexample.png', `#testresult/${r.uid}`, [], 2100, null, () => openStep(s.name, ['how it ended']));
    // the suites view: the search's cases as its only results, the counterexample's case open on the
    // right at its steps
    await shot('search-suites.png', '#suites', [['.node__title', label(r, 'parentSuite') || 'gate'],
      ['.node__title', label(r, 'suite') || 'search'],
      ...searches.filter(c => label(c, 'suite') === label(r, 'suite')).map(c => ['.node__title', label(c, 'subSuite')]),
      ['.node__leaf', r.name]], 1000, () => {
        const body = [...document.querySelectorAll('.step__title_stage')].find(e => e.innerText.trim() === 'Test body');
        if (body) body.scrollIntoView();
      });
  }
  console.log(JSON.stringify({searched: searched.map(r => r.name),
    steps: counter.map(({r, s}) => `${r.name}: ${s.name} (${s.status})`), picked, shots}));
  await browser.close();
  server.close();
})();
