// backoff.js - reconnect delays: exponential growth with jitter, capped.
//
// delay(n) is drawn uniformly from [d/2, d] where d = min(cap, base * factor^n)
// ("equal jitter"): never zero, so a server that refuses at once can never put
// the client into a hot loop, and spread out so that thousands of clients cut
// off by one gateway do not all come back in the same millisecond.
//
//   const b = createBackoff();            // 500 ms .. 30 s
//   setTimeout(connect, b.next());        // after each failed attempt
//   b.reset();                            // once a connection proved healthy

export const BACKOFF_DEFAULTS = Object.freeze({ base: 500, cap: 30000, factor: 2 });

export function createBackoff({ base = 500, cap = 30000, factor = 2, random = Math.random } = {}) {
    if (!(base > 0) || !(cap >= base) || !(factor >= 1)) throw new RangeError('backoff: need base > 0, cap >= base, factor >= 1');
    let attempt = 0;
    return {
        // The delay before the next attempt (ms); each call counts one attempt.
        next() {
            const ceiling = Math.min(cap, base * Math.pow(factor, attempt));
            attempt++;
            return Math.round(ceiling / 2 + random() * (ceiling / 2));
        },
        reset() {
            attempt = 0;
        },
        get attempt() {
            return attempt;
        },
    };
}
