// What shoot.js and shoot_search.js share: the generated Allure report served on 127.0.0.1 (the
// multi-file report does not open from file://), headless Chromium started the same way, and a
// click on the first element whose text holds a string.
const fs = require('fs');
const path = require('path');
const http = require('http');

const types = {'.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.png': 'image/png', '.mp4': 'video/mp4', '.svg': 'image/svg+xml', '.txt': 'text/plain', '.csv': 'text/csv',
  '.woff': 'font/woff', '.woff2': 'font/woff2', '.ico': 'image/x-icon'};

function serve(report) {
  const server = http.createServer((req, res) => {
    const file = path.join(report, decodeURIComponent(req.url.split('?')[0]).replace(/\/$/, '/index.html'));
    if (!file.startsWith(report) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, {'Content-Type': types[path.extname(file)] || 'application/octet-stream'});
    fs.createReadStream(file).pipe(res);
  });
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function launch(puppeteer) {
  return puppeteer.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--no-first-run']});
}

const sleep = (ms) => new Promise(r => setTimeout(r, ms));

// Clicks the first `selector` element whose text contains `text` (and not `exclude`), then waits
// for the report to redraw; false (and a line on the console) when there is none.
async function clickText(page, selector, text, exclude = null) {
  const ok = await page.evaluate((selector, text, exclude) => {
    const els = [...document.querySelectorAll(selector)].filter(e => e.innerText && e.innerText.includes(text)
      && !(exclude && e.innerText.includes(exclude)));
    if (!els.length) return false;
    els[0].scrollIntoView(); els[0].click(); return true;
  }, selector, text, exclude);
  if (!ok) console.log('not found:', selector, text);
  await sleep(1200);
  return ok;
}

module.exports = {serve, launch, clickText, sleep};
