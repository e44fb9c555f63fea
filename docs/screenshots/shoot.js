// How docs/screenshots were taken: serve reports/allure-report on 127.0.0.1:8766 (python3 -m http.server),
// npm install puppeteer-core, apt-get install chromium, then: node docs/screenshots/shoot.js
const puppeteer = require('puppeteer-core');
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
async function clickText(page, selector, text) {
  const ok = await page.evaluate((selector, text) => {
    const els = [...document.querySelectorAll(selector)].filter(e => e.innerText && e.innerText.includes(text));
    if (!els.length) return false;
    els[els.length - 1].scrollIntoView(); els[els.length - 1].click(); return true;
  }, selector, text);
  if (!ok) console.log('not found:', selector, text);
  await sleep(1500);
}
(async () => {
  const browser = await puppeteer.launch({executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--window-size=1400,1800']});
  const page = await browser.newPage();
  await page.setViewport({width: 1400, height: 1800});
  await page.goto('http://127.0.0.1:8766/#categories', {waitUntil: 'networkidle0'});
  await sleep(2000);
  await page.screenshot({path: 'docs/screenshots/shot_categories.png'});
  await clickText(page, '.node__title', 'Failure mode: timeout');
  await clickText(page, '.node__title', 'pushes-push_n=10');
  await clickText(page, '.node__leaf, .node__name, a', 'test_scenario[pushes-push_n=10');
  const classes = await page.evaluate(() => [...new Set([...document.querySelectorAll('[class*=attachment]')].map(e => e.className))].slice(0, 20));
  console.log(JSON.stringify(classes));
  await page.screenshot({path: 'docs/screenshots/shot_case.png'});
  for (const name of ['failure modes', 'torque per joint', 'worst episode']) {
    await clickText(page, '.attachment-row__name, .attachment-row', name);
  }
  await sleep(2000);
  const video = await page.evaluate(() => { const v = document.querySelector('video'); return v ? {src: v.currentSrc || v.src, ready: v.readyState, dur: v.duration} : null; });
  console.log('video', JSON.stringify(video));
  await page.screenshot({path: 'docs/screenshots/shot_attachments.png', fullPage: true});
  await browser.close();
})();
