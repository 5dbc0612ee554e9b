import { describe, expect, it } from 'vitest';
import { createBackoff } from '../src/lib/backoff.js';

describe('backoff', () => {
    it('grows exponentially up to the cap, with jitter in [d/2, d]', () => {
        const lo = createBackoff({ base: 500, cap: 30000, random: () => 0 });
        const hi = createBackoff({ base: 500, cap: 30000, random: () => 0.999999 });
        const los = Array.from({ length: 10 }, () => lo.next());
        const his = Array.from({ length: 10 }, () => hi.next());
        expect(los).toEqual([250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000]);
        expect(his).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
    });

    it('never returns zero or a negative delay: no hot loop', () => {
        const b = createBackoff({ base: 100, cap: 1000, random: () => 0 });
        for (let i = 0; i < 100; i++) expect(b.next()).toBeGreaterThanOrEqual(50);
    });

    it('spreads clients out (different random draws give different delays)', () => {
        let x = 0;
        const seq = [0.1, 0.9];
        const a = createBackoff({ random: () => seq[x++ % 2] });
        const d1 = a.next();
        a.reset();
        const d2 = a.next();
        expect(d1).not.toBe(d2);
    });

    it('reset starts again from the base; attempt counts calls', () => {
        const b = createBackoff({ base: 1000, cap: 8000, random: () => 1 });
        b.next();
        b.next();
        b.next();
        expect(b.attempt).toBe(3);
        b.reset();
        expect(b.attempt).toBe(0);
        expect(b.next()).toBe(1000);
    });

    it('refuses nonsense parameters', () => {
        expect(() => createBackoff({ base: 0 })).toThrow(RangeError);
        expect(() => createBackoff({ base: 100, cap: 50 })).toThrow(RangeError);
    });
});
