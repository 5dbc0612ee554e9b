// Connection: the reconnect / recover / resend sequence, against a scripted
// stand-in for the browser's WebSocket (the real thing, against real
// gateways, is tests/e2e). Timers and Date are node:test's mock timers: time
// moves only when a test advances it.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { createBackoff } from '../../web/src/lib/backoff.js';
import { decodeFrame, encodeFrame } from '../../web/src/lib/codec.js';
import { Connection, createStore } from '../../web/src/lib/connection.js';
import { initialState, reduce } from '../../web/src/lib/store.js';

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
// Runs every pending promise continuation (the real setImmediate comes after
// the microtask queue drains): the async close path has run to its setTimeout.
const flush = () => new Promise((resolve) => setImmediate(resolve));
// Moves the clock ms forward, firing the timers due, then flushes.
const advance = async (ms) => {
    mock.timers.tick(ms);
    await flush();
};

// The clock starts at the real time (a clock at 0 would throttle the first
// typing frame); setImmediate stays real for flush.
beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() }));
afterEach(() => mock.timers.reset());

describe('connection', () => {
    it('reconnects with growing delays, then syncs from its seq and re-sends unacked messages with the same cid', async () => {
        const { store, conn, last } = setup();
        conn.start();
        let ws = last();
        ws.open();
        ws.push(hello(4));
        assert.equal(store.getState().conn.status, 'online');
        assert.deepEqual(ws.sent, []); // first connect: no sync

        const cid = conn.sendText('bob', 'are you there?');
        assert.deepEqual(ws.sent, [{ kind: 'text', to: 'bob', data: 'are you there?', cid }]);

        ws.drop();
        await flush();
        assert.equal(store.getState().conn.status, 'offline');
        assert.equal(FakeSocket.all.length, 1);
        await advance(999);
        assert.equal(FakeSocket.all.length, 1); // not before the backoff delay
        await advance(1);
        assert.equal(FakeSocket.all.length, 2);
        last().drop(); // refused again: the next wait doubles
        await flush();
        await advance(1999);
        assert.equal(FakeSocket.all.length, 2);
        await advance(1);
        assert.equal(FakeSocket.all.length, 3);

        ws = last();
        ws.open();
        ws.push(hello(9));
        assert.deepEqual(ws.sent, [
            { kind: 'sync', after: 4, epoch: 'e1' },
            { kind: 'text', to: 'bob', data: 'are you there?', cid },
        ]);
        ws.push({ kind: 'ack', cid, id: 77, seq: 10, sent: 1 });
        ws.push({ kind: 'sync', recovered: true, seq: 10 });
        const s = store.getState();
        assert.deepEqual(s.outbox, {});
        assert.deepEqual(
            s.convs.bob.messages.map((m) => m.id),
            [77],
        );
        assert.equal(s.syncing, false);
        conn.stop();
    });

    it('a socket refused before hello with a 401 on the API signs out instead of retrying', async () => {
        const { conn, fetches, last } = setup({ status: 401 });
        conn.start();
        last().drop();
        await flush();
        assert.deepEqual(fetches, ['/api/users?q=']);
        assert.equal(conn.signedOut, true);
        await advance(60000);
        assert.equal(FakeSocket.all.length, 1);
    });

    it('no ack within the timeout marks the message failed; retry sends the same cid', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        const cid = conn.sendText('bob', 'x');
        await advance(10000);
        assert.equal(store.getState().outbox[cid].status, 'failed');
        conn.retry(cid);
        assert.equal(store.getState().outbox[cid].status, 'sending');
        assert.deepEqual(
            ws.sent.map((f) => f.cid),
            [cid, cid],
        );
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
        assert.deepEqual(ws.sent, [
            { kind: 'history', with: 'bob', limit: 1 },
            { kind: 'history', with: 'bob', limit: 50, before: 50 },
        ]);
        ws.push({ kind: 'history', with: 'bob', messages: [], more: true });
        assert.equal(store.getState().convs.bob.historyLoaded, false); // a preview
        ws.push({ kind: 'history', with: 'bob', messages: [], more: false });
        assert.equal(store.getState().convs.bob.more, false);
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
        assert.equal(store.getState().convs.bob.loadingOlder, false);
        assert.equal(conn.requestHistory('bob', 'initial'), false);
        assert.equal(store.getState().notice, null);
        conn.stop();
    });

    it('a message too large for the gateway fails at once and is never sent (no 1009 loop)', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        const cid = conn.sendText('bob', 'é'.repeat(40000)); // 80000 bytes
        assert.deepEqual(ws.sent, []);
        assert.equal(store.getState().outbox[cid].status, 'failed');
        assert.equal(store.getState().outbox[cid].error, 'too_large');
        conn.retry(cid);
        assert.deepEqual(ws.sent, []);
        assert.equal(store.getState().outbox[cid].status, 'failed');
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
        await advance(2600);
        conn.typing('bob');
        assert.equal(ws.sent.filter((f) => f.kind === 'typing').length, 2);
        conn.stop();
    });
});
