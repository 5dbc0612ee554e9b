// The web client in a real browser against a real deployment (lib/stack.mjs):
// redis, a router, two gateways serving web/dist, haproxy with one frontend
// per "site" (A prefers gw1, B prefers gw2). Alice's pages load through A,
// Bob's through B, so they sit on different gateways (checked in Redis).
// Tests run in order and build on each other (the same users and pages).
//
// Server features (history, read, group) are probed once; a test that needs a missing one fails naming it.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client } from '../integration/lib/client.mjs';
import { makeUsers, sleep, waitFor } from '../integration/lib/cluster.mjs';
import { Stack } from './lib/stack.mjs';
import * as ui from './lib/ui.mjs';

const stack = new Stack('e2e');
const cluster = stack.cluster;
const missing = new Map(); // kind -> reason
const pages = {};

before(async () => {
    await stack.start();
    // which contract kinds the gateway answers (see the header)
    const [probe] = Object.entries(await makeUsers(cluster.gw(0), ['erin']));
    const P = await Client.connect(cluster.gw(0), probe[1]);
    for (const f of [
        { kind: 'history', with: 'erin' },
        { kind: 'read', with: 'erin', upto: 1 },
        { kind: 'group', op: 'leave', name: '#no-such-group' },
    ]) {
        P.send(f);
        const e = await P.next((x) => x.kind === 'error' || x.kind === f.kind, 1500).catch(() => null);
        if (e && e.kind === 'error' && e.code === 'unknown_kind') missing.set(f.kind, `the gateway answers "${f.kind}" with unknown_kind (${e.message})`);
    }
    await P.close();
});
after(() => stack.stop());

function needs(t, ...kinds) {
    const why = kinds.filter((k) => missing.has(k)).map((k) => missing.get(k));
    // the server must do it: a missing feature fails the test, named (never a skip)
    assert.equal(why.length, 0, `the gateway lacks what this test needs: ${why.join('; ')}`);
    return true;
}

const title = (page) => page.title();

cluster.test('register and log in with clear errors; the session survives a reload; log out', async () => {
    const A = await stack.page('A');
    pages.A = A;
    await A.locator('form[aria-label="Log in"]').waitFor({ timeout: ui.T });
    await A.getByRole('button', { name: 'Create an account' }).click();
    // refused by the page before the server sees it
    await A.locator('input[name=username]').fill('no spaces');
    await A.locator('input[name=password]').fill(ui.PASSWORD);
    await A.getByRole('button', { name: 'Create account', exact: true }).click();
    assert.match(await A.locator('[data-testid=auth-error]').textContent(), /lower-case letters/);
    await A.locator('input[name=username]').fill('alice');
    await A.locator('input[name=password]').fill('short');
    await A.getByRole('button', { name: 'Create account', exact: true }).click();
    assert.match(await A.locator('[data-testid=auth-error]').textContent(), /at least 8/);
    await stack.shot(A, 'register-error');
    await A.locator('input[name=password]').fill(ui.PASSWORD);
    await A.getByRole('button', { name: 'Create account', exact: true }).click();
    await ui.signedInAs(A, 'alice');

    // the server's refusals, in words
    const X = await stack.page('B');
    await ui.register(X, 'alice');
    assert.match(await X.locator('[data-testid=auth-error]').textContent({ timeout: ui.T }), /taken/);
    await X.getByRole('button', { name: 'Log in instead' }).click();
    await ui.login(X, 'alice', 'wrong password!');
    await X.locator('[data-testid=auth-error]', { hasText: 'Wrong user name or password' }).waitFor({ timeout: ui.T });
    await stack.shot(X, 'login-error');
    await X.context().close();

    // a reload keeps the session (cookie); log out ends it
    await A.reload();
    await ui.signedInAs(A, 'alice');
    await A.getByRole('button', { name: 'Log out' }).click();
    await A.locator('form[aria-label="Log in"]').waitFor({ timeout: ui.T });
    await A.reload();
    await A.locator('form[aria-label="Log in"]').waitFor({ timeout: ui.T });
    await ui.login(A, 'alice');
    await ui.signedInAs(A, 'alice');
});

cluster.test('two users on two gateways: chat both ways, presence, typing, unread badge and tab title', async () => {
    const A = pages.A;
    const B = await stack.page('B');
    pages.B = B;
    await ui.register(B, 'bob');
    await ui.signedInAs(B, 'bob');
    assert.deepEqual(await stack.gatewaysOf('alice'), ['gw1'], 'alice loads through site A: gw1');
    assert.deepEqual(await stack.gatewaysOf('bob'), ['gw2'], 'bob loads through site B: gw2');

    // bob's hello lists alice, online
    await ui.conv(B, 'alice').waitFor({ timeout: ui.T });
    await waitFor(async () => (await ui.conv(B, 'alice').getAttribute('data-online')) === 'true', { what: "alice online in bob's list" });
    await ui.openConv(B, 'alice');
    await B.locator('[data-testid=presence]', { hasText: 'Online' }).waitFor({ timeout: ui.T });

    // typing, then a message: alice sees both, with an unread badge and the tab title
    await B.locator('#composer').fill('Hi alice');
    await ui.conv(A, 'bob').locator('[data-testid=preview]', { hasText: 'typing…' }).waitFor({ timeout: ui.T });
    await B.locator('#composer').press('Enter');
    await ui.waitStatus(B, 'Hi alice', 'sent').catch(async (e) => {
        if ((await ui.statusOf(B, 'Hi alice')) !== 'read') throw e;
    });
    await ui.waitBadge(A, 'bob', '1');
    assert.equal(await title(A), '(1) Parley');
    assert.equal(await ui.conv(A, 'bob').locator('[data-testid=preview]').textContent(), 'Hi alice');
    await waitFor(async () => (await ui.conv(A, 'bob').getAttribute('data-online')) === 'true', { what: "bob online in alice's list" });
    await stack.shot(A, 'list-unread');

    // alice reads it: badge and title clear
    await ui.openConv(A, 'bob');
    await ui.waitTexts(A, ['Hi alice']);
    await ui.waitBadge(A, 'bob', null);
    await waitFor(async () => (await title(A)) === 'Parley', { what: 'tab title without unread' });

    // and answers: bob sees the typing indicator, then the message
    await A.locator('#composer').fill('Hello bob, good to see you');
    await B.locator('[data-testid=typing]').waitFor({ timeout: ui.T });
    await A.locator('#composer').press('Enter');
    await ui.waitTexts(B, ['Hi alice', 'Hello bob, good to see you']);
    await ui.waitTexts(A, ['Hi alice', 'Hello bob, good to see you']);
    const a = await ui.messages(A);
    assert.deepEqual(
        a.map((m) => [m.from, m.text]),
        [
            ['bob', 'Hi alice'],
            ['alice', 'Hello bob, good to see you'],
        ],
    );
    assert.ok(a[0].id < a[1].id, 'ids increase within the conversation');
    await A.locator('[data-testid=day-separator]', { hasText: 'Today' }).first().waitFor();
    await stack.shot(A, 'chat');
    await stack.shot(B, 'chat-bob');
});

cluster.test('read receipts: a message read on the other side shows "Read"', async (t) => {
    if (!needs(t, 'read')) return;
    const { A, B } = pages;
    await ui.send(B, 'Did you read this?');
    await ui.waitTexts(A, ['Did you read this?']); // alice has the conversation open
    await ui.waitStatus(B, 'Did you read this?', 'read');
    await ui.waitStatus(A, 'Hello bob, good to see you', 'read');
    await stack.shot(B, 'chat-read');
});

cluster.test('alice closes the page, gets messages while away, and sees them on return (no login)', async () => {
    const { A, B } = pages;
    const ctxA = A.context();
    await A.close();
    await B.locator('[data-testid=presence]', { hasText: 'Offline' }).waitFor({ timeout: ui.T });
    const away = ['while you were away 1', 'while you were away 2', 'while you were away 3'];
    for (const s of away) await ui.send(B, s);
    for (const s of away) await ui.waitStatus(B, s, 'sent');

    const A2 = await stack.page('A', { context: ctxA });
    pages.A = A2;
    await ui.signedInAs(A2, 'alice'); // the cookie, not a login
    await ui.waitBadge(A2, 'bob', '3');
    assert.equal(await title(A2), '(3) Parley');
    await B.locator('[data-testid=presence]', { hasText: 'Online' }).waitFor({ timeout: ui.T });
    await ui.openConv(A2, 'bob');
    await ui.waitTexts(A2, away);
    const got = (await ui.messages(A2)).filter((m) => away.includes(m.text));
    assert.deepEqual(
        got.map((m) => m.text),
        away,
        'each once, in order',
    );
    await ui.waitBadge(A2, 'bob', null);
});

cluster.test('gw1 is killed mid-chat: alice reconnects through haproxy to gw2; nothing lost, nothing doubled', { timeout: 120000 }, async () => {
    const { A, B } = pages;
    await ui.openConv(B, 'alice').catch(() => {});
    assert.deepEqual(await stack.gatewaysOf('alice'), ['gw1']);
    await ui.send(A, 'before the crash (alice)');
    await ui.send(B, 'before the crash (bob)');
    await ui.waitTexts(A, ['before the crash (alice)', 'before the crash (bob)']);
    await ui.waitTexts(B, ['before the crash (alice)', 'before the crash (bob)']);

    await cluster.killGateway(0, 'SIGKILL');
    // both keep typing through the outage
    const during = ['during 1 (alice)', 'during 2 (alice)'];
    const bobDuring = ['during 1 (bob)', 'during 2 (bob)'];
    for (const s of during) await ui.send(A, s);
    for (const s of bobDuring) await ui.send(B, s);
    await waitFor(async () => (await A.locator('[data-testid=conn-banner]').getAttribute('data-state')) !== 'online', {
        timeout: ui.T,
        what: "alice's banner to leave 'online'",
    }).catch(() => {}); // it may already have reconnected
    await stack.shot(A, 'reconnecting');
    await ui.online(A);
    await waitFor(async () => JSON.stringify(await stack.gatewaysOf('alice')) === '["gw2"]', {
        timeout: ui.T,
        what: "alice's session on gw2",
    });
    await ui.send(A, 'after (alice)');
    await ui.send(B, 'after (bob)');

    const all = ['before the crash (alice)', 'before the crash (bob)', ...during, ...bobDuring, 'after (alice)', 'after (bob)'];
    for (const [name, page] of [
        ['alice', A],
        ['bob', B],
    ]) {
        await ui.waitTexts(page, all, `all messages on ${name}'s page`);
        await waitFor(async () => (await ui.messages(page)).every((m) => m.id), { what: `${name}: no message left pending` });
        const ms = (await ui.messages(page)).filter((m) => all.includes(m.text));
        assert.equal(ms.length, all.length, `${name}: each message exactly once: ${JSON.stringify(ms.map((m) => m.text))}`);
        assert.equal(new Set(ms.map((m) => m.id)).size, ms.length, `${name}: ids unique`);
        const ids = ms.map((m) => m.id);
        assert.deepEqual(
            ids,
            [...ids].sort((x, y) => x - y),
            `${name}: shown in id order`,
        );
        assert.deepEqual(
            ms.filter((m) => m.text.includes('(alice)')).map((m) => m.text),
            ['before the crash (alice)', ...during, 'after (alice)'],
            `${name}: alice's messages in the order she sent them`,
        );
        const own = ms.filter((m) => m.from === name);
        assert.ok(
            own.every((m) => m.status === 'sent' || m.status === 'read'),
            `${name}: own messages acked: ${JSON.stringify(own)}`,
        );
    }
    await stack.shot(A, 'after-failover');
    await cluster.startGateway({ index: 0 });
    await stack.serversUp(ui.T);
});

cluster.test('both gateways down: the banner counts down, attempts back off (no hot loop), the page comes back with them', { timeout: 120000 }, async (t) => {
    const { A, B } = pages;
    let attempts = 0;
    const count = () => attempts++;
    A.on('websocket', count);
    try {
        await Promise.all([cluster.killGateway(0, 'SIGKILL'), cluster.killGateway(1, 'SIGKILL')]);
        await A.locator('[data-testid=conn-banner][data-state=offline]').waitFor({ timeout: ui.T });
        assert.match(await A.locator('[data-testid=conn-banner]').textContent(), /Connection lost\. Reconnecting/);
        await stack.shot(A, 'offline');
        await ui.send(A, 'written while everything is down');
        const t0 = Date.now();
        await sleep(8000);
        const n = attempts;
        t.diagnostic(`${n} WebSocket attempts in ${Date.now() - t0} ms with both gateways down`);
        // delays are drawn from [d/2, d] with d = 0.5, 1, 2, 4, 8 s...: in 8 s at
        // most 5 attempts however lucky the draws (one more for slack), and a
        // slow machine only makes fewer; a hot loop would make hundreds
        assert.ok(n >= 2 && n <= 6, `${n} connection attempts in ${Date.now() - t0} ms`);
    } finally {
        A.off('websocket', count);
    }
    // gw1 first, and UP for site A before gw2 (site A's backup) comes: alice's
    // page retries on its own and must not land on gw2 in between
    await cluster.startGateway({ index: 0 });
    await stack.serversUp(ui.T, ['gw_a/gw1']);
    await cluster.startGateway({ index: 1 });
    await stack.serversUp(ui.T);
    // "Reconnect now" skips the wait (a click during an attempt is a no-op: the attempt goes on)
    await A.getByRole('button', { name: 'Reconnect now' })
        .click({ timeout: 2000 })
        .catch(() => {});
    await ui.online(A);
    await ui.online(B);
    assert.deepEqual(await stack.gatewaysOf('alice'), ['gw1'], 'site A is back on gw1');
    await ui.waitTexts(B, ['written while everything is down']);
    await ui.waitStatus(A, 'written while everything is down', 'read');
});

cluster.test('no router: the message shows "failed" with the reason; Retry re-sends the same cid once a router is back', async () => {
    const { A, B } = pages;
    await cluster.killRouter('SIGKILL');
    // the leases (1 s) must lapse before the gateway's PUBLISH reaches nobody
    await waitFor(async () => (await cluster.redis('PUBSUB', 'NUMSUB', 'parley:rt:0'))[1] === 0, { what: 'no router listening' });
    await ui.send(A, 'sent while no router runs');
    await ui.waitStatus(A, 'sent while no router runs', 'failed');
    const bubble = A.locator('[data-testid=msg][data-status=failed]');
    assert.match(await bubble.textContent(), /Not sent/);
    const cid = await bubble.getAttribute('data-cid');
    await stack.shot(A, 'failed');
    await cluster.startRouter();
    await bubble.getByRole('button', { name: 'Retry' }).click();
    await waitFor(async () => ['sent', 'read'].includes(await ui.statusOf(A, 'sent while no router runs')), { timeout: ui.T, what: 'sent after Retry' });
    const m = (await ui.messages(A)).filter((x) => x.text === 'sent while no router runs');
    assert.equal(m.length, 1, 'one bubble');
    await ui.waitTexts(B, ['sent while no router runs']);
    const onB = (await ui.messages(B)).filter((x) => x.text === 'sent while no router runs');
    assert.equal(onB.length, 1, 'bob gets it once');
    // the stored message carries the cid the page first used (bob's inbox holds a reference to it)
    const stored = await cluster.redis('ZRANGE', 'parley:{c:alice|bob}:history', '-1', '-1');
    assert.ok(stored.length === 1 && stored[0].includes(cid) && stored[0].includes('sent while no router runs'), `the newest stored message has cid ${cid}`);
});

cluster.test('older history loads when scrolling up', async (t) => {
    if (!needs(t, 'history')) return;
    const A = pages.A;
    const tokens = await makeUsers(cluster.gw(1), ['carol']);
    const C = await Client.connect(cluster.gw(1), tokens.carol);
    const texts = Array.from({ length: 70 }, (_, i) => `old ${i}`);
    for (let i = 0; i < texts.length; i++) {
        const cid = `h${i}`;
        C.send({ kind: 'text', to: 'alice', data: texts[i], cid });
        await C.next((f) => f.kind === 'ack' && f.cid === cid);
    }
    await C.close();
    await A.reload(); // a fresh page has nothing of carol's: only history can show it
    await ui.signedInAs(A, 'alice');
    await ui.openConv(A, 'carol');
    await ui.waitTexts(A, texts.slice(-50), 'the newest page');
    const firstPage = (await ui.messages(A)).length;
    assert.ok(firstPage < texts.length, `the first page (${firstPage}) is not everything`);
    await waitFor(
        async () => {
            await A.locator('[data-testid=messages]').evaluate((el) => (el.scrollTop = 0));
            return (await A.locator('[data-testid=history-start]').count()) > 0;
        },
        { timeout: ui.T, what: 'scrolling up to the start of the conversation' },
    );
    const ms = await ui.messages(A);
    assert.deepEqual(
        ms.map((m) => m.text),
        texts,
        'every message once, in order',
    );
    await stack.shot(A, 'history');

    // scrolled up, a new message does not move the view: a button offers it
    const box = A.locator('[data-testid=messages]');
    const top = await box.evaluate((el) => el.scrollTop);
    const C2 = await Client.connect(cluster.gw(1), tokens.carol);
    C2.send({ kind: 'text', to: 'alice', data: 'are you still there?', cid: 'h-new' });
    await C2.next((f) => f.kind === 'ack' && f.cid === 'h-new');
    await ui.waitTexts(A, ['are you still there?']);
    const jump = A.getByRole('button', { name: 'New messages ↓' });
    await jump.waitFor({ timeout: ui.T });
    assert.equal(await box.evaluate((el) => el.scrollTop), top, 'the view stayed where the reader was');
    await ui.waitBadge(A, 'carol', '1'); // not read while scrolled up
    await jump.click();
    await waitFor(async () => box.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 48), { what: 'scrolled to the end' });
    await ui.waitBadge(A, 'carol', null);
    await C2.close();
});

cluster.test('the same user in two tabs: own messages and read positions show on both', async (t) => {
    if (!needs(t, 'read')) return;
    const { A, B } = pages;
    const A3 = await stack.page('B', { context: A.context() }); // alice again, via the other site
    await ui.signedInAs(A3, 'alice');
    await ui.openConv(B, 'alice');
    await ui.openConv(A3, 'erin'); // not bob: so only tab A reads bob's next message
    await ui.openConv(A, 'erin');
    await ui.send(B, 'one for both tabs');
    await ui.waitBadge(A3, 'bob', '1');
    await ui.waitBadge(A, 'bob', '1');
    await ui.openConv(A, 'bob'); // read on tab A ...
    await ui.waitBadge(A3, 'bob', null); // ... clears tab A3's badge
    await ui.send(A, 'sent from tab A');
    await ui.openConv(A3, 'bob');
    await ui.waitTexts(A3, ['one for both tabs', 'sent from tab A']);
    const mine = (await ui.messages(A3)).filter((m) => m.text === 'sent from tab A');
    assert.equal(mine.length, 1);
    assert.equal(mine[0].from, 'alice', 'shown as her own message');
    await A3.close();
});

cluster.test('groups: create with a member, add one, join an open one; messages reach every member', async (t) => {
    if (!needs(t, 'group')) return;
    const { A, B } = pages;
    let C = pages.C;
    if (!C) {
        C = await stack.page('B');
        pages.C = C;
        await makeUsers(cluster.gw(1), ['carol']).catch(() => {}); // 409 when the history test made her
        await ui.login(C, 'carol');
        await ui.signedInAs(C, 'carol');
    }
    // alice creates #team with bob
    await A.getByRole('button', { name: 'New group' }).click();
    await A.getByLabel('Group name').fill('team');
    await A.getByLabel('Members (names, comma separated)').fill('bob');
    await A.getByRole('button', { name: 'Create', exact: true }).click();
    await A.locator('[data-testid=chat-title]', { hasText: '#team' }).waitFor({ timeout: ui.T });
    await ui.conv(B, '#team').waitFor({ timeout: ui.T });
    await ui.send(A, 'hello team');
    await ui.openConv(B, '#team');
    await ui.waitTexts(B, ['hello team']);
    // alice adds carol
    await A.getByRole('button', { name: 'Add', exact: true }).click();
    await A.locator('#add-members').fill('carol');
    await A.locator('#add-members').press('Enter');
    await ui.conv(C, '#team').waitFor({ timeout: ui.T });
    await ui.openConv(C, '#team');
    await ui.send(C, 'thanks for adding me');
    await ui.waitTexts(A, ['hello team', 'thanks for adding me']);
    await ui.waitTexts(B, ['hello team', 'thanks for adding me']);
    // an open group bob can join by name
    await A.getByRole('button', { name: 'New group' }).click();
    await A.getByLabel('Group name').fill('#lobby');
    await A.getByLabel('Open: anyone may join').check();
    await A.getByRole('button', { name: 'Create', exact: true }).click();
    await A.locator('[data-testid=chat-title]', { hasText: '#lobby' }).waitFor({ timeout: ui.T });
    await B.getByRole('button', { name: 'Join group' }).click();
    await B.getByLabel('Open group to join').fill('lobby');
    await B.getByLabel('Open group to join').press('Enter');
    await B.locator('[data-testid=chat-title]', { hasText: '#lobby' }).waitFor({ timeout: ui.T });
    await ui.send(B, 'bob joined the lobby');
    await ui.waitTexts(A, ['bob joined the lobby']);
    await stack.shot(A, 'group');
});

cluster.test('phone width, keyboard only: log in, open a conversation, send', async () => {
    const P = await stack.page('B', { viewport: { width: 390, height: 800 } });
    await makeUsers(cluster.gw(1), ['dave']);
    // the user name field has focus on load
    await P.locator('input[name=username]').waitFor({ timeout: ui.T });
    await P.keyboard.type('dave');
    await P.keyboard.press('Tab');
    await P.keyboard.type(ui.PASSWORD);
    await P.keyboard.press('Enter');
    await ui.signedInAs(P, 'dave');
    await stack.shot(P, 'phone-list');
    // Tab to alice in the list, Enter opens it
    const focusTo = async (pred, what) => {
        for (let i = 0; i < 40; i++) {
            await P.keyboard.press('Tab');
            if (await P.evaluate(pred)) return;
        }
        throw new Error(`Tab never reached ${what}`);
    };
    await focusTo(() => document.activeElement && document.activeElement.dataset.key === 'alice', 'alice in the list');
    await P.keyboard.press('Enter');
    await P.locator('[data-testid=chat-title]', { hasText: 'alice' }).waitFor({ timeout: ui.T });
    assert.equal(await P.locator('aside[aria-label=Conversations]').isVisible(), false, 'at phone width the chat replaces the list');
    await focusTo(() => document.activeElement && document.activeElement.id === 'composer', 'the composer');
    await P.keyboard.type('typed on a phone, keyboard only');
    await P.keyboard.press('Enter');
    await ui.waitTexts(P, ['typed on a phone, keyboard only']);
    await ui.waitStatus(P, 'typed on a phone, keyboard only', 'sent').catch(() => {});
    await stack.shot(P, 'phone-chat');
    const A = pages.A;
    await ui.conv(A, 'dave').waitFor({ timeout: ui.T });
    await ui.waitBadge(A, 'dave', '1');
    await ui.openConv(A, 'bob');
    await ui.waitBadge(A, 'dave', '1'); // still unread: alice looks at bob
    await stack.shot(A, 'overview');
    // Escape-free way back: the Back button, by keyboard
    await P.getByRole('button', { name: 'Back to conversations' }).focus();
    await P.keyboard.press('Enter');
    await P.locator('aside[aria-label=Conversations]').waitFor({ timeout: ui.T });
    await P.context().close();
});
