// What the store tests share (tests/web/*.test.mjs): a fixed clock, the
// reducer run over events, a server frame as the connection hands it to the
// store, and alice's hello with the users a file needs.
import { initialState, reduce } from '../../../web/src/lib/store.js';

export const T0 = 1_764_000_000_000;
export const run = (events, s = initialState()) => events.reduce(reduce, s);
export const frame = (f, extra = {}) => ({ type: 'frame', frame: f, now: T0, ...extra });
// alice's hello listing `users` (default: bob, online), fields of o over it
export const helloWith = (users = [{ username: 'bob', online: true, unread: 0 }], o = {}) =>
    frame({ kind: 'hello', user: 'alice', seq: 0, epoch: 'e1', users, ...o });
