// Connection: the reconnect / recover / resend sequence, against a scripted
// stand-in for the browser's WebSocket (the real thing, against real
// gateways, is tests/e2e). Timers are vitest's fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createBackoff } from '../src/lib/backoff.js';
import { decodeFrame, encodeFrame } from '../src/lib/codec.js';
import { Connection, createStore } from '../src/lib/connection.js';
import { initialState, reduce } from '../src/lib/store.js';

class FakeSocket {
    static all = [];
    constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.sent = [];
        FakeSocket.all.push(this);
    }
    send(bytes) {
        this.sent.push(decodeFrame(bytes));
    }
    close() {
        this.readyState = 3;
    }
    // server side
    open() {
        this.readyState = 1;
    }
    push(frame) {
        this.onmessage({ data: encodeFrame(frame).slice().buffer });
    }
    drop(code = 1006) {
        this.readyState = 3;
        this.onclose({ code });
    }
}

function setup({ status = 200 } = {}) {
    FakeSocket.all = [];
    const store = createStore(reduce, initialState());
    const fetches = [];
    const conn = new Connection({
        url: 'ws://x/ws',
        dispatch: store.dispatch,
        getState: store.getState,
        WebSocket: FakeSocket,
        fetch: async (path) => {
            fetches.push(path);
            return { status };
        },
        backoff: createBackoff({ base: 1000, cap: 8000, random: () => 1 }),
        onSignedOut: () => (conn.signedOut = true),
    });
    return { store, conn, fetches, last: () => FakeSocket.all[FakeSocket.all.length - 1] };
}

const hello = (seq, epoch = 'e1') => ({ kind: 'hello', user: 'alice', seq, epoch, users: [{ username: 'bob', online: true, unread: 0 }] });
const flush = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('connection', () => {
    it('reconnects with growing delays, then syncs from its seq and re-sends unacked messages with the same cid', async () => {
        const { store, conn, last } = setup();
        conn.start();
        let ws = last();
        ws.open();
        ws.push(hello(4));
        expect(store.getState().conn.status).toBe('online');
        expect(ws.sent).toEqual([]); // first connect: no sync

        const cid = conn.sendText('bob', 'are you there?');
        expect(ws.sent).toEqual([{ kind: 'text', to: 'bob', data: 'are you there?', cid }]);

        ws.drop();
        await flush();
        expect(store.getState().conn.status).toBe('offline');
        expect(FakeSocket.all).toHaveLength(1);
        await vi.advanceTimersByTimeAsync(999);
        expect(FakeSocket.all).toHaveLength(1); // not before the backoff delay
        await vi.advanceTimersByTimeAsync(1);
        expect(FakeSocket.all).toHaveLength(2);
        last().drop(); // refused again: the next wait doubles
        await flush();
        await vi.advanceTimersByTimeAsync(1999);
        expect(FakeSocket.all).toHaveLength(2);
        await vi.advanceTimersByTimeAsync(1);
        expect(FakeSocket.all).toHaveLength(3);

        ws = last();
        ws.open();
        ws.push(hello(9));
        expect(ws.sent).toEqual([
            { kind: 'sync', after: 4, epoch: 'e1' },
            { kind: 'text', to: 'bob', data: 'are you there?', cid },
        ]);
        ws.push({ kind: 'ack', cid, id: 77, seq: 10, sent: 1 });
        ws.push({ kind: 'sync', recovered: true, seq: 10 });
        const s = store.getState();
        expect(s.outbox).toEqual({});
        expect(s.convs.bob.messages.map((m) => m.id)).toEqual([77]);
        expect(s.syncing).toBe(false);
        conn.stop();
    });

    it('a socket refused before hello with a 401 on the API signs out instead of retrying', async () => {
        const { conn, fetches, last } = setup({ status: 401 });
        conn.start();
        last().drop();
        await flush();
        expect(fetches).toEqual(['/api/users?q=']);
        expect(conn.signedOut).toBe(true);
        await vi.advanceTimersByTimeAsync(60000);
        expect(FakeSocket.all).toHaveLength(1);
    });

    it('no ack within the timeout marks the message failed; retry sends the same cid', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        const cid = conn.sendText('bob', 'x');
        await vi.advanceTimersByTimeAsync(10000);
        expect(store.getState().outbox[cid].status).toBe('failed');
        conn.retry(cid);
        expect(store.getState().outbox[cid].status).toBe('sending');
        expect(ws.sent.map((f) => f.cid)).toEqual([cid, cid]);
        conn.stop();
    });

    it('history answers are matched to their request (initial / older / preview)', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        conn.requestHistory('bob', 'preview');
        conn.requestHistory('bob', 'older', 50);
        expect(ws.sent).toEqual([
            { kind: 'history', with: 'bob', limit: 1 },
            { kind: 'history', with: 'bob', limit: 50, before: 50 },
        ]);
        ws.push({ kind: 'history', with: 'bob', messages: [], more: true });
        expect(store.getState().convs.bob.historyLoaded).toBe(false); // a preview
        ws.push({ kind: 'history', with: 'bob', messages: [], more: false });
        expect(store.getState().convs.bob.more).toBe(false);
        conn.stop();
    });

    it('a server without history (unknown_kind) is not asked again, and no spinner waits', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        conn.requestHistory('bob', 'older', 10);
        ws.push({ kind: 'error', code: 'unknown_kind', message: 'history: not implemented yet' });
        expect(store.getState().convs.bob.loadingOlder).toBe(false);
        expect(conn.requestHistory('bob', 'initial')).toBe(false);
        expect(store.getState().notice).toBe(null);
        conn.stop();
    });

    it('a message too large for the gateway fails at once and is never sent (no 1009 loop)', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        const cid = conn.sendText('bob', 'é'.repeat(40000)); // 80000 bytes
        expect(ws.sent).toEqual([]);
        expect(store.getState().outbox[cid].status).toBe('failed');
        expect(store.getState().outbox[cid].error).toBe('too_large');
        conn.retry(cid);
        expect(ws.sent).toEqual([]);
        expect(store.getState().outbox[cid].status).toBe('failed');
        conn.stop();
    });

    it('typing is throttled', async () => {
        const { conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        conn.typing('bob');
        conn.typing('bob');
        await vi.advanceTimersByTimeAsync(2600);
        conn.typing('bob');
        expect(ws.sent.filter((f) => f.kind === 'typing')).toHaveLength(2);
        conn.stop();
    });
});
