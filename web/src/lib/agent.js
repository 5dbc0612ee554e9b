// agent.js - a session's device in words ("Firefox on Linux") from the
// User-Agent string the server kept with it (GET /api/sessions `agent`).
// Rough on purpose: enough to tell one's own devices apart, never a reason
// to refuse anything.

const BROWSERS = [
    [/\bEdg(?:e|A|iOS)?\//, 'Edge'],
    [/\bOPR\/|\bOpera\b/, 'Opera'],
    [/\bSamsungBrowser\//, 'Samsung Internet'],
    [/\bFirefox\/|\bFxiOS\//, 'Firefox'],
    [/\bHeadlessChrome\//, 'Headless Chrome'],
    [/\bChromium\//, 'Chromium'],
    [/\bChrome\/|\bCriOS\//, 'Chrome'],
    [/\bVersion\/[\d.]+.*\bSafari\//, 'Safari'],
];

const SYSTEMS = [
    [/\bWindows\b/, 'Windows'],
    [/\bAndroid\b/, 'Android'],
    [/\biPhone\b/, 'iPhone'],
    [/\biPad\b/, 'iPad'],
    [/\bCrOS\b/, 'ChromeOS'],
    [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
    [/\bLinux\b|\bX11\b/, 'Linux'],
];

export function describeAgent(agent) {
    const ua = typeof agent === 'string' ? agent.trim() : '';
    if (!ua) return 'Unknown device';
    const browser = BROWSERS.find(([re]) => re.test(ua));
    const system = SYSTEMS.find(([re]) => re.test(ua));
    if (browser) return system ? `${browser[1]} on ${system[1]}` : browser[1];
    // a program, not a browser: its first product token ("curl/8.1" -> "curl")
    const product = ua.split(/[\s/]/)[0].slice(0, 40);
    return system ? `${product} on ${system[1]}` : product;
}
