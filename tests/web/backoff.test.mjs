// The web client's reconnect backoff (web/src/lib/backoff.js): delays, jitter,
// reset, parameter checks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBackoff } from '../../web/src/lib/backoff.js';

describe('backoff', () => {
    it('grows exponentially up to the cap, with jitter in [d/2, d]', () => {
        const lo = createBackoff({ base: 500, cap: 30000, random: () => 0 });
        const hi = createBackoff({ base: 500, cap: 30000, random: () => 0.999999 });
        const los = Array.from({ length: 10 }, () => lo.next());
        const his = Array.from({ length: 10 }, () => hi.next());
        assert.deepEqual(los, [250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000]);
        assert.deepEqual(his, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
    });

    it('never returns zero or a negative delay: no hot loop', () => {
        const b = createBackoff({ base: 100, cap: 1000, random: () => 0 });
        for (let i = 0; i < 100; i++) assert.ok(b.next() >= 50);
    });

    it('spreads clients out (different random draws give different delays)', () => {
        let x = 0;
        const seq = [0.1, 0.9];
        const a = createBackoff({ random: () => seq[x++ % 2] });
        const d1 = a.next();
        a.reset();
        const d2 = a.next();
        assert.notEqual(d1, d2);
    });

    it('reset starts again from the base; attempt counts calls', () => {
        const b = createBackoff({ base: 1000, cap: 8000, random: () => 1 });
        b.next();
        b.next();
        b.next();
        assert.equal(b.attempt, 3);
        b.reset();
        assert.equal(b.attempt, 0);
        assert.equal(b.next(), 1000);
    });

    it('refuses nonsense parameters', () => {
        assert.throws(() => createBackoff({ base: 0 }), RangeError);
        assert.throws(() => createBackoff({ base: 100, cap: 50 }), RangeError);
    });
});
