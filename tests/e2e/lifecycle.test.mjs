// The message lifecycle in a real browser against a real deployment
// (lib/stack.mjs: redis, a router, two gateways serving web/dist, haproxy
// with site A -> gw1 and site B -> gw2): alice's page loads through site A,
// bob's through site B, so every action crosses gateways. Each UI action of
// docs/protocol.md "Message lifecycle" is done on one page and checked on
// both: edit (inline, and ArrowUp / Escape in the composer), delete (own;
// the group owner deletes a member's), reactions (picker, counts, who),
// reply (quote, jump to the original), `@` completion, the mention badge
// and highlight, mute (kept over a reload), and a browser notification
// while alice's tab is hidden.
//
// Notifications: alice's browser context has the real `notifications`
// permission granted; an init script wraps window.Notification to record
// each one constructed (and requestPermission calls), and lets the test
// make the page hidden (document.visibilityState / visibilitychange), as
// switching tabs does.
//
// Alice's WebSocket goes through a Playwright route (routeWebSocket,
// frames passed through as they are) that the test can cut: the page loses
// its socket and its reconnects are refused until the test lets them
// through, so what bob does meanwhile reaches her only through the offline
// push and `sync` after her reconnect.
//
// Tests run in order and build on each other (the same users and pages).
// The gateway's lifecycle frames are probed once: a test that needs them
// fails naming what is missing (never a skip).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client } from '../integration/lib/client.mjs';
import { makeUsers, waitFor } from '../integration/lib/cluster.mjs';
import { decodeFrame } from '../../web/src/lib/codec.js';
import { Stack } from './lib/stack.mjs';
import * as ui from './lib/ui.mjs';

const stack = new Stack('e2e-lifecycle');
const cluster = stack.cluster;
const missing = new Map(); // feature -> reason
const pages = {};

// Records notifications and permission requests; page visibility under the test's control.
const INIT = () => {
    window.__notes = [];
    window.__asked = 0;
    const Real = window.Notification;
    if (Real) {
        class Recorded extends Real {
            constructor(title, opts = {}) {
                window.__notes.push({ title, body: opts.body, tag: opts.tag, permission: Real.permission });
                super(title, opts);
            }
        }
        Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
        Recorded.requestPermission = (...a) => {
            window.__asked++;
            return Real.requestPermission(...a);
        };
        window.Notification = Recorded;
    }
    let hidden = false;
    Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
    Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => hidden });
    window.__setHidden = (h) => {
        hidden = h;
        document.dispatchEvent(new Event('visibilitychange'));
    };
};

before(async () => {
    await stack.start();
    // does the gateway speak the lifecycle frames? (an edit of a message of one's own)
    const port = cluster.gw(0);
    const tokens = await makeUsers(port, ['probe1', 'probe2']);
    const P = await Client.connect(port, tokens.probe1);
    P.send({ kind: 'text', to: 'probe2', data: 'probe', cid: 'p1' });
    const ack = await P.next((x) => x.kind === 'ack' || x.kind === 'error', 3000).catch(() => null);
    if (!ack || ack.kind !== 'ack') missing.set('lifecycle', `a text to probe is not acked (${JSON.stringify(ack)})`);
    else {
        P.send({ kind: 'edit', with: 'probe2', id: ack.id, data: 'probed', cid: 'p2' });
        const e = await P.next((x) => (x.kind === 'ack' && x.cid === 'p2') || x.kind === 'error', 3000).catch(() => null);
        if (!e || e.kind !== 'ack')
            missing.set('lifecycle', `the gateway answers "edit" with ${e ? JSON.stringify(e) : 'nothing'} (the lifecycle has not landed)`);
    }
    await P.close();
});
after(() => stack.stop());

function needs(...features) {
    const why = features.filter((k) => missing.has(k)).map((k) => missing.get(k));
    assert.equal(why.length, 0, `the gateway lacks what this test needs: ${why.join('; ')}`);
}

const bubble = (page, text) => page.locator('[data-testid=msg]', { hasText: text }).last();
const byId = (page, id) => page.locator(`[data-testid=msg][data-id="${id}"]`);

async function idOf(page, text) {
    const b = bubble(page, text);
    await b.waitFor({ timeout: ui.T });
    return waitFor(
        async () => {
            const id = await b.getAttribute('data-id');
            return id ? Number(id) : Promise.reject(new Error('no id yet'));
        },
        { timeout: ui.T, what: `an id for "${text}"` },
    );
}

async function action(page, id, name) {
    const b = byId(page, id);
    await b.hover();
    await b.locator(`[data-testid=${name}]`).click({ timeout: ui.T });
}

// {emoji: users} as the message shows its reactions
async function reactions(page, id) {
    return byId(page, id)
        .locator('[data-testid=reaction]')
        .evaluateAll((els) => Object.fromEntries(els.map((e) => [e.dataset.emoji, e.dataset.users.split(',')])));
}

async function waitReactions(page, id, want) {
    return waitFor(
        async () => {
            const r = await reactions(page, id);
            if (JSON.stringify(r) !== JSON.stringify(want)) throw new Error(`reactions ${JSON.stringify(r)}`);
            return true;
        },
        { timeout: ui.T, what: `reactions ${JSON.stringify(want)} on ${id}` },
    );
}

const notes = (page) => page.evaluate(() => window.__notes);

const overlap = (a, b) => !!a && !!b && a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

// whether a locator is wholly inside the page's message list as scrolled
async function inList(P, loc) {
    const box = await P.locator('[data-testid=messages]').boundingBox();
    const m = await loc.boundingBox();
    return !!m && m.y >= box.y - 1 && m.y + m.height <= box.y + box.height + 1;
}

// alice's socket, through a route the test can cut (see the header)
const gate = {
    cut: false,
    live: null,
    frames: [], // every frame the server sent alice's page, decoded
    hold: null, // frame -> true: kept from the page (an answer delayed) until release()
    held: [],
    release() {
        this.hold = null;
        const held = this.held.splice(0);
        for (const m of held) if (this.live) this.live.ws.send(m);
    },
    handle(ws) {
        if (this.cut) {
            ws.close({ code: 1001, reason: 'cut by the test' });
            return;
        }
        const server = ws.connectToServer();
        server.onMessage((m) => {
            const f = decodeFrame(typeof m === 'string' ? Buffer.from(m) : m);
            if (f) this.frames.push(f);
            if (f && this.hold && this.hold(f)) this.held.push(m);
            else ws.send(m);
        });
        this.live = { ws, server };
    },
    async sever() {
        this.cut = true;
        if (!this.live) return;
        const { ws, server } = this.live;
        this.live = null;
        await server.close({ code: 1000, reason: 'cut by the test' });
        await ws.close({ code: 1001, reason: 'cut by the test' });
    },
};

cluster.test('two users on two gateways: alice (site A, notifications granted) and bob (site B), a 1:1 and a group', async () => {
    const ctxA = await stack.browser.newContext({ viewport: { width: 1100, height: 760 } });
    await ctxA.grantPermissions(['notifications'], { origin: stack.url('A').replace(/\/$/, '') });
    await ctxA.addInitScript(INIT);
    await ctxA.routeWebSocket(/\/ws$/, (ws) => gate.handle(ws));
    const A = await stack.page('A', { context: ctxA });
    await A.locator('form[aria-label="Log in"]').waitFor({ timeout: ui.T });
    await ui.register(A, 'alice');
    await ui.signedInAs(A, 'alice');
    const B = await stack.page('B');
    await ui.register(B, 'bob');
    await ui.signedInAs(B, 'bob');
    Object.assign(pages, { A, B });
    assert.deepEqual(await stack.gatewaysOf('alice'), ['gw1']);
    assert.deepEqual(await stack.gatewaysOf('bob'), ['gw2']);
    assert.equal(await A.evaluate(() => Notification.permission), 'granted');
    assert.equal(await A.locator('[data-testid=notify-button]').count(), 0, 'granted: nothing to ask');

    // #crew: alice owns it, bob is a member
    await A.getByRole('button', { name: 'New group' }).click();
    await A.getByLabel('Group name').fill('crew');
    await A.getByLabel('Members (names, comma separated)').fill('bob');
    await A.getByRole('button', { name: 'Create', exact: true }).click();
    await A.locator('[data-testid=chat-title]', { hasText: '#crew' }).waitFor({ timeout: ui.T });
    await ui.send(A, 'welcome to the crew');
    await ui.conv(B, '#crew').waitFor({ timeout: ui.T });
    await ui.openConv(B, '#crew');
    await ui.waitTexts(B, ['welcome to the crew']);

    await ui.startChat(A, 'bob');
    await ui.send(A, 'helo bob');
    await ui.conv(B, 'alice').waitFor({ timeout: ui.T });
    await ui.openConv(B, 'alice');
    await ui.waitTexts(B, ['helo bob']);
});

cluster.test('the notification permission is asked only on a click, never on load', async () => {
    const ctx = await stack.browser.newContext({ viewport: { width: 1100, height: 760 } });
    await ctx.addInitScript(INIT);
    const X = await stack.page('A', { context: ctx });
    await ui.login(X, 'bob');
    await ui.signedInAs(X, 'bob');
    const button = X.locator('[data-testid=notify-button]');
    await button.waitFor({ timeout: ui.T });
    assert.equal(await X.evaluate(() => window.__asked), 0, 'not asked on load');
    await button.click();
    await waitFor(async () => (await X.evaluate(() => window.__asked)) === 1, { timeout: ui.T, what: 'requestPermission called once, on the click' });
    await ctx.close();
});

cluster.test('edit: inline, marked edited on both pages; ArrowUp edits the last own message, Escape cancels', async () => {
    needs('lifecycle');
    const { A, B } = pages;
    const id = await idOf(A, 'helo bob');
    await action(A, id, 'edit-button');
    const box = byId(A, id).locator('[data-testid=edit-box]');
    await box.fill('hello bob');
    await box.press('Enter');
    for (const P of [A, B]) {
        await byId(P, id).locator('[data-testid=msg-text]', { hasText: 'hello bob' }).waitFor({ timeout: ui.T });
        await byId(P, id).locator('[data-testid=edited-mark]').waitFor({ timeout: ui.T });
    }
    // ArrowUp in the empty composer: the same message in an edit box; Escape leaves it as it was
    await A.locator('#composer').click();
    await A.locator('#composer').press('ArrowUp');
    await box.waitFor({ timeout: ui.T });
    assert.equal(await box.inputValue(), 'hello bob');
    await box.fill('never saved');
    await box.press('Escape');
    await box.waitFor({ state: 'detached', timeout: ui.T });
    assert.equal(await byId(A, id).locator('[data-testid=msg-text]').textContent(), 'hello bob');
    await A.locator('#composer').press('ArrowUp');
    await box.fill('hello bob, how are you?');
    await box.press('Enter');
    await byId(B, id).locator('[data-testid=msg-text]', { hasText: 'hello bob, how are you?' }).waitFor({ timeout: ui.T });
    assert.equal(await byId(A, id).getAttribute('data-edited'), 'true');
    await stack.shot(B, 'lifecycle-edited');
});

cluster.test('reactions: the picker, counts and who reacted, on both pages; a second click takes it back', async () => {
    needs('lifecycle');
    const { A, B } = pages;
    const id = await idOf(B, 'hello bob, how are you?');
    // the picker closes on Escape, and on a click outside it
    const picker = byId(B, id).locator('[data-testid=react-picker]');
    await action(B, id, 'react-button');
    await picker.waitFor({ timeout: ui.T });
    await B.keyboard.press('Escape');
    await picker.waitFor({ state: 'detached', timeout: ui.T });
    await action(B, id, 'react-button');
    await picker.waitFor({ timeout: ui.T });
    await B.locator('[data-testid=chat-title]').click();
    await picker.waitFor({ state: 'detached', timeout: ui.T });
    await action(B, id, 'react-button');
    await byId(B, id).getByRole('button', { name: 'React with 👍' }).click();
    await waitReactions(A, id, { '👍': ['bob'] });
    await waitReactions(B, id, { '👍': ['bob'] });
    // alice adds hers by clicking the chip; both see 2, and who
    await byId(A, id).locator('[data-testid=reaction][data-emoji="👍"]').click();
    await waitReactions(B, id, { '👍': ['bob', 'alice'] });
    await waitReactions(A, id, { '👍': ['bob', 'alice'] });
    const chip = byId(B, id).locator('[data-testid=reaction][data-emoji="👍"]');
    assert.equal((await chip.locator('[data-testid=reaction-count]').textContent()).trim(), '2');
    assert.equal(await chip.getAttribute('title'), '👍 by you, alice');
    await action(A, id, 'react-button');
    await byId(A, id).getByRole('button', { name: 'React with 🎉' }).click();
    await waitReactions(B, id, { '👍': ['bob', 'alice'], '🎉': ['alice'] });
    await stack.shot(B, 'lifecycle-reactions');
    // bob takes his back
    await chip.click();
    await waitReactions(A, id, { '👍': ['alice'], '🎉': ['alice'] });
    await waitReactions(B, id, { '👍': ['alice'], '🎉': ['alice'] });
});

cluster.test(
    "touch screen (390x800, no hover): a tap shows a message's actions and who reacted; Reply works; a tap elsewhere or Escape hides them",
    async () => {
        needs('lifecycle');
        const { A } = pages;
        const ctx = await stack.browser.newContext({ viewport: { width: 390, height: 800 }, isMobile: true, hasTouch: true });
        const P = await stack.page('B', { context: ctx });
        try {
            await ui.login(P, 'bob');
            await ui.online(P);
            await ui.openConv(P, 'alice');
            const id = await idOf(P, 'hello bob, how are you?');
            const m = byId(P, id);
            await m.scrollIntoViewIfNeeded();
            const tools = m.locator('[data-testid=msg-actions]');
            // before a tap: no actions to touch (hover styles never apply on a touch screen)
            assert.notEqual(await tools.evaluate((e) => getComputedStyle(e).opacity), '1', 'hidden until tapped');
            await m.locator('[data-testid=msg-text]').tap();
            await waitFor(async () => (await m.getAttribute('data-selected')) === 'true', { timeout: ui.T, what: 'the tap selects the message' });
            assert.equal(await tools.evaluate((e) => getComputedStyle(e).opacity), '1');
            assert.equal(await tools.isVisible(), true);
            // who reacted, without hover
            const who = m.locator('[data-testid=reaction-who]');
            await who.waitFor({ timeout: ui.T });
            assert.match(await who.textContent(), /👍 alice/);
            await stack.shot(P, 'lifecycle-phone-selected');
            // a tap elsewhere hides them; Escape too
            await P.locator('[data-testid=chat-title]').tap();
            await waitFor(async () => (await m.getAttribute('data-selected')) === null, { timeout: ui.T, what: 'a tap elsewhere unselects' });
            await m.locator('[data-testid=msg-text]').tap();
            await waitFor(async () => (await m.getAttribute('data-selected')) === 'true', { timeout: ui.T, what: 'selected again' });
            await P.keyboard.press('Escape');
            await waitFor(async () => (await m.getAttribute('data-selected')) === null, { timeout: ui.T, what: 'Escape unselects' });
            // Reply, by touch
            await m.locator('[data-testid=msg-text]').tap();
            await m.locator('[data-testid=reply-button]').tap({ timeout: ui.T });
            await P.locator('[data-testid=reply-bar]', { hasText: 'hello bob, how are you?' }).waitFor({ timeout: ui.T });
            await ui.send(P, 'answered from a phone');
            await ui.waitTexts(A, ['answered from a phone']);
            const reply = await idOf(A, 'answered from a phone');
            await byId(A, reply).locator('[data-testid=reply-quote]', { hasText: 'hello bob, how are you?' }).waitFor({ timeout: ui.T });
        } finally {
            await ctx.close();
        }
    },
);

cluster.test('delete: own message becomes "message deleted" on both pages', async () => {
    needs('lifecycle');
    const { A, B } = pages;
    await ui.send(B, 'this was a mistake');
    await ui.waitTexts(A, ['this was a mistake']);
    const id = await idOf(B, 'this was a mistake');
    // alice may not delete bob's message in a 1:1: no Delete for her
    await byId(A, id).hover();
    assert.equal(await byId(A, id).locator('[data-testid=delete-button]').count(), 0);
    await action(B, id, 'delete-button');
    await byId(B, id).locator('[data-testid=delete-confirm]').getByRole('button', { name: 'Delete', exact: true }).click();
    for (const P of [A, B]) {
        await waitFor(async () => (await byId(P, id).getAttribute('data-deleted')) === 'true', { timeout: ui.T, what: 'deleted' });
        assert.equal(await byId(P, id).locator('[data-testid=msg-text]').textContent(), 'message deleted');
    }
    await waitFor(async () => (await ui.conv(A, 'bob').locator('[data-testid=preview]').textContent()) === 'message deleted', {
        timeout: ui.T,
        what: 'the preview says deleted',
    });
    await stack.shot(A, 'lifecycle-deleted');
});

cluster.test('reply: a quoted preview; clicking it scrolls to the original and highlights it; Escape cancels a reply', async () => {
    needs('lifecycle');
    const { A, B } = pages;
    await ui.send(A, 'the original question');
    await ui.waitTexts(B, ['the original question']);
    const orig = await idOf(A, 'the original question');
    // enough messages after it that it scrolls out of view
    const filler = Array.from({ length: 24 }, (_, i) => `filler ${i + 1}`);
    for (const t of filler) await ui.send(A, t);
    await ui.waitTexts(B, filler);
    // a reply started and cancelled with Escape
    await action(B, orig, 'reply-button');
    await B.locator('[data-testid=reply-bar]', { hasText: 'the original question' }).waitFor({ timeout: ui.T });
    await B.locator('#composer').press('Escape');
    await B.locator('[data-testid=reply-bar]').waitFor({ state: 'detached', timeout: ui.T });
    // the real one
    await action(B, orig, 'reply-button');
    await B.locator('[data-testid=reply-bar]', { hasText: 'the original question' }).waitFor({ timeout: ui.T });
    await ui.send(B, 'the answer');
    await B.locator('[data-testid=reply-bar]').waitFor({ state: 'detached', timeout: ui.T });
    await ui.waitTexts(A, ['the answer']);
    const reply = await idOf(A, 'the answer');
    for (const P of [A, B]) await byId(P, reply).locator('[data-testid=reply-quote]', { hasText: 'the original question' }).waitFor({ timeout: ui.T });
    // jump: the original comes into view, highlighted
    const inView = async (P, id) => {
        const box = await P.locator('[data-testid=messages]').boundingBox();
        const m = await byId(P, id).boundingBox();
        return m && m.y >= box.y && m.y + m.height <= box.y + box.height;
    };
    assert.equal(await inView(A, orig), false, 'the original is scrolled out of view');
    await byId(A, reply).locator('[data-testid=reply-quote]').click();
    await waitFor(async () => (await byId(A, orig).getAttribute('data-highlight')) === 'true', { timeout: ui.T, what: 'the original highlighted' });
    assert.equal(await inView(A, orig), true, 'the original is in view');
    await stack.shot(A, 'lifecycle-reply-jump');
});

cluster.test('a long conversation at the bottom: a reaction to the newest message stays in view; hover actions cover no other message', async () => {
    needs('lifecycle');
    const { A, B } = pages;
    // the lists scroll (the reply test's fillers); at the bottom, they follow the newest message as it grows
    await ui.send(A, 'react to me at the bottom');
    await ui.waitTexts(B, ['react to me at the bottom']);
    const newest = await idOf(B, 'react to me at the bottom');
    await waitFor(async () => inList(B, byId(B, newest)), { timeout: ui.T, what: 'the newest message in view' });
    // the actions shown on hover cover no other message (nor the reactions of the one above)
    await byId(B, newest).hover();
    const tools = byId(B, newest).locator('[data-testid=msg-actions]');
    await waitFor(async () => (await tools.evaluate((e) => getComputedStyle(e).opacity)) === '1', { timeout: ui.T, what: 'actions shown on hover' });
    const tb = await tools.boundingBox();
    for (const other of await B.locator(`[data-testid=msg]:not([data-id="${newest}"])`).all())
        assert.equal(overlap(tb, await other.boundingBox()), false, 'actions over another message');
    await action(A, newest, 'react-button');
    await byId(A, newest).getByRole('button', { name: 'React with 😂' }).click();
    await waitReactions(B, newest, { '😂': ['alice'] });
    await waitFor(async () => inList(B, byId(B, newest).locator('[data-testid=reactions]')), { timeout: ui.T, what: "bob's view follows the reaction down" });
    await waitFor(async () => inList(A, byId(A, newest).locator('[data-testid=reactions]')), { timeout: ui.T, what: "alice's view follows her reaction down" });
    assert.ok(await B.locator('[data-testid=messages]').evaluate((e) => e.scrollHeight > e.clientHeight), 'a list that scrolls');
});

cluster.test('@ completion in a group, mention highlight and badge (cleared when read)', async () => {
    needs('lifecycle');
    const { A, B } = pages;
    // alice looks at the 1:1, so #crew stays unread for her; bob at #crew
    await ui.openConv(A, 'bob');
    await ui.openConv(B, '#crew');

    // bob types "@al": alice is offered; Tab picks her
    const box = B.locator('#composer');
    await box.click();
    await box.pressSequentially('look here @al');
    const option = B.locator('[data-testid=mention-option]', { hasText: '@alice' });
    await option.waitFor({ timeout: ui.T });
    await stack.shot(B, 'lifecycle-mention-completion');
    await box.press('Tab');
    assert.equal(await box.inputValue(), 'look here @alice ');
    await box.pressSequentially('what do you think?');
    await box.press('Enter');
    const text = 'look here @alice what do you think?';
    await ui.waitTexts(B, [text]);

    // alice: the mention badge on #crew, then the highlight; reading clears the badge
    const badge = ui.conv(A, '#crew').locator('[data-testid=mention-badge]');
    await waitFor(async () => ((await badge.allTextContents())[0] || '').trim() === '@1', { timeout: ui.T, what: 'mention badge @1' });
    await ui.waitBadge(A, '#crew', '1');
    // the @ badge sits right beside the unread one, at the row's end
    const mb = await badge.boundingBox();
    const ub = await ui.conv(A, '#crew').locator('[data-testid=unread-badge]').boundingBox();
    assert.ok(ub.x - (mb.x + mb.width) >= 0 && ub.x - (mb.x + mb.width) < 16, `the @ badge beside the unread one (${JSON.stringify({ mb, ub })})`);
    await stack.shot(A, 'lifecycle-mention-badge');
    // a reload keeps it: hello's `mentions` for #crew
    await A.reload();
    await ui.signedInAs(A, 'alice');
    await waitFor(async () => ((await badge.allTextContents())[0] || '').trim() === '@1', { timeout: ui.T, what: 'mention badge @1 after a reload' });
    await ui.waitBadge(A, '#crew', '1');
    await ui.openConv(A, '#crew');
    const mark = bubble(A, text).locator('[data-testid=mention][data-me=true]');
    await mark.waitFor({ timeout: ui.T });
    assert.equal(await mark.textContent(), '@alice');
    await waitFor(async () => (await badge.count()) === 0, { timeout: ui.T, what: 'mention badge cleared' });
    await ui.waitBadge(A, '#crew', null);
});

cluster.test("the group owner deletes a member's message; the member sees it deleted", async () => {
    needs('lifecycle');
    const { A, B } = pages;
    await ui.send(B, 'an off-topic remark');
    await ui.waitTexts(A, ['an off-topic remark']);
    const id = await idOf(A, 'an off-topic remark');
    // bob (a plain member) has Delete only on his own
    const alices = await idOf(B, 'welcome to the crew');
    await byId(B, alices).hover();
    assert.equal(await byId(B, alices).locator('[data-testid=delete-button]').count(), 0);
    await action(A, id, 'delete-button');
    await byId(A, id).locator('[data-testid=delete-confirm]').getByRole('button', { name: 'Delete', exact: true }).click();
    for (const P of [A, B])
        await waitFor(async () => (await byId(P, id).getAttribute('data-deleted')) === 'true', { timeout: ui.T, what: 'deleted by the owner' });
});

cluster.test(
    "missed while away: bob's edit, delete and reaction reach alice's page through sync after a reconnect; her reaction made offline is sent once",
    async () => {
        needs('lifecycle');
        const { A, B } = pages;
        await ui.openConv(A, 'bob');
        await ui.openConv(B, 'alice');
        await ui.send(B, 'keep me');
        await ui.send(B, 'remove me');
        await ui.send(A, 'react to me');
        await ui.waitTexts(A, ['keep me', 'remove me', 'react to me']);
        await ui.waitTexts(B, ['keep me', 'remove me', 'react to me']);
        const [keep, remove, mine] = [await idOf(A, 'keep me'), await idOf(A, 'remove me'), await idOf(A, 'react to me')];

        await gate.sever();
        await waitFor(async () => (await A.locator('[data-testid=conn-banner]').getAttribute('data-state')) !== 'online', {
            timeout: ui.T,
            what: "alice's page offline",
        });
        await waitFor(async () => (await stack.gatewaysOf('alice')).length === 0, { timeout: ui.T, what: "alice's session gone from Redis" });

        // bob, meanwhile: an edit, a delete, a reaction
        await action(B, keep, 'edit-button');
        await byId(B, keep).locator('[data-testid=edit-box]').fill('keep me (edited)');
        await byId(B, keep).locator('[data-testid=edit-box]').press('Enter');
        await action(B, remove, 'delete-button');
        await byId(B, remove).locator('[data-testid=delete-confirm]').getByRole('button', { name: 'Delete', exact: true }).click();
        await action(B, mine, 'react-button');
        await byId(B, mine).getByRole('button', { name: 'React with 🎉' }).click();
        for (const id of [keep, remove, mine])
            await waitFor(async () => (await byId(B, id).locator('[data-testid=op-status]').count()) === 0, {
                timeout: ui.T,
                what: `bob's change of ${id} acked`,
            });
        // alice, offline: a reaction waits for the connection
        await action(A, keep, 'react-button');
        await byId(A, keep).getByRole('button', { name: 'React with 👍' }).click();
        await byId(A, keep).locator('[data-testid=op-status]').waitFor({ timeout: ui.T });
        assert.equal(await byId(A, keep).locator('[data-testid=msg-text]').textContent(), 'keep me', 'nothing reached her yet');

        const from = gate.frames.length;
        gate.cut = false;
        await A.getByRole('button', { name: 'Reconnect now' })
            .click({ timeout: ui.T })
            .catch(() => {}); // or the backoff's own attempt
        await ui.online(A);
        await byId(A, keep).locator('[data-testid=msg-text]', { hasText: 'keep me (edited)' }).waitFor({ timeout: ui.T });
        await byId(A, keep).locator('[data-testid=edited-mark]').waitFor({ timeout: ui.T });
        await waitFor(async () => (await byId(A, remove).getAttribute('data-deleted')) === 'true', { timeout: ui.T, what: 'the delete replayed' });
        await waitReactions(A, mine, { '🎉': ['bob'] });
        await waitReactions(A, keep, { '👍': ['alice'] });
        await waitReactions(B, keep, { '👍': ['alice'] });
        await waitFor(async () => (await byId(A, keep).locator('[data-testid=op-status]').count()) === 0, { timeout: ui.T, what: "alice's reaction acked" });
        await stack.shot(A, 'lifecycle-after-sync');
        // they came replayed after hello (offline push / sync), with seqs, not from a history page
        const got = gate.frames.slice(from);
        assert.equal(got[0].kind, 'hello');
        const replayed = (kind, id) => got.filter((f) => f.kind === kind && f.id === id);
        for (const [kind, id] of [
            ['edit', keep],
            ['delete', remove],
            ['react', mine],
        ])
            assert.ok(
                replayed(kind, id).length >= 1 && replayed(kind, id).every((f) => Number.isInteger(f.seq)),
                `${kind} of ${id} replayed: ${JSON.stringify(got)}`,
            );
        assert.deepEqual(
            got.filter((f) => f.kind === 'history' && f.with === 'bob'),
            [],
            'no history page of the conversation was needed',
        );

        // a reload shows the same current state (hello's last, history)
        await A.reload();
        await ui.signedInAs(A, 'alice');
        await ui.openConv(A, 'bob');
        await byId(A, keep).locator('[data-testid=msg-text]', { hasText: 'keep me (edited)' }).waitFor({ timeout: ui.T });
        await waitFor(async () => (await byId(A, remove).getAttribute('data-deleted')) === 'true', { timeout: ui.T, what: 'deleted after a reload' });
        await waitReactions(A, mine, { '🎉': ['bob'] });
        await waitReactions(A, keep, { '👍': ['alice'] });
    },
);

cluster.test('notifications while the tab is hidden: a 1:1 message and a mention; not a plain group message, not when muted or visible', async () => {
    const { A, B } = pages;
    await ui.openConv(A, 'bob');
    await A.evaluate(() => window.__setHidden(true));
    const n0 = (await notes(A)).length;
    await ui.openConv(B, 'alice');
    await ui.send(B, 'are you there, alice?');
    await waitFor(async () => (await notes(A)).length > n0, { timeout: ui.T, what: 'a notification on alice’s hidden page' });
    const [note] = (await notes(A)).slice(n0);
    assert.deepEqual([note.title, note.body, note.permission], ['bob', 'are you there, alice?', 'granted']);
    await stack.shot(A, 'lifecycle-notification');

    // in the group: a plain message notifies nothing, a mention does
    await ui.openConv(B, '#crew');
    await ui.send(B, 'just chatting');
    if (!missing.has('lifecycle')) {
        await ui.send(B, '@alice ping');
        await waitFor(async () => (await notes(A)).some((x) => x.body === '@alice ping'), { timeout: ui.T, what: 'a mention notification' });
        const got = (await notes(A)).slice(n0).map((x) => [x.title, x.body]);
        assert.deepEqual(got, [
            ['bob', 'are you there, alice?'],
            ['bob mentioned you in #crew', '@alice ping'],
        ]);
    }

    // muted: nothing; visible again: nothing
    await A.evaluate(() => window.__setHidden(false));
    await A.locator('[data-testid=mute-button]').click();
    await A.evaluate(() => window.__setHidden(true));
    const n1 = (await notes(A)).length;
    await ui.openConv(B, 'alice');
    await ui.send(B, 'muted message');
    await ui.waitTexts(A, ['muted message']);
    await A.evaluate(() => window.__setHidden(false));
    await ui.send(B, 'visible message');
    await ui.waitTexts(A, ['visible message']);
    assert.equal((await notes(A)).length, n1, 'no notification when muted or visible');
    await A.locator('[data-testid=mute-button]').click();
});

cluster.test('mute: kept over a reload; a muted conversation shows a quiet badge', async () => {
    const { A, B } = pages;
    await ui.openConv(A, 'bob');
    await A.locator('[data-testid=mute-button]', { hasText: 'Mute' }).click();
    await A.locator('[data-testid=mute-button]', { hasText: 'Unmute' }).waitFor({ timeout: ui.T });
    await A.reload();
    await ui.signedInAs(A, 'alice');
    await waitFor(async () => (await ui.conv(A, 'bob').getAttribute('data-muted')) === 'true', { timeout: ui.T, what: 'still muted after a reload' });
    await ui.conv(A, 'bob').locator('[data-testid=muted-mark]').waitFor({ timeout: ui.T });
    // a message from bob while alice looks elsewhere: the unread badge is there, quiet
    await ui.openConv(A, '#crew');
    await ui.send(B, 'quietly');
    await ui.waitBadge(A, 'bob', '1');
    assert.equal(await ui.conv(A, 'bob').locator('[data-testid=unread-badge]').getAttribute('data-muted'), 'true');
    await stack.shot(A, 'lifecycle-muted');
    await ui.openConv(A, 'bob');
    await A.locator('[data-testid=mute-button]', { hasText: 'Unmute' }).click();
    await waitFor(async () => (await ui.conv(A, 'bob').getAttribute('data-muted')) === null, { timeout: ui.T, what: 'unmuted' });
});

cluster.test('a delete whose answer is late, discarded: the page still ends showing what the server stored (deleted)', async () => {
    needs('lifecycle');
    const { A, B } = pages;
    await ui.openConv(A, 'bob');
    await ui.send(A, 'delete me, slowly');
    await ui.waitTexts(B, ['delete me, slowly']);
    const id = await idOf(A, 'delete me, slowly');
    await waitFor(async () => (await byId(A, id).getAttribute('data-status')) !== null, { timeout: ui.T, what: 'acked' });
    // the server's answers to alice's page are held back: the delete is stored, its ack late
    gate.hold = (f) => f.kind === 'ack';
    try {
        await action(A, id, 'delete-button');
        await byId(A, id).locator('[data-testid=delete-confirm]').getByRole('button', { name: 'Delete', exact: true }).click();
        await waitFor(async () => (await byId(B, id).getAttribute('data-deleted')) === 'true', { timeout: ui.T, what: 'deleted for bob' });
        const line = byId(A, id).locator('[data-testid=op-failed]');
        await line.waitFor({ timeout: 20000 });
        assert.match(await line.textContent(), /^No answer yet to this delete/, 'the bubble shows it deleted: the line does not say "not deleted"');
        await line.getByRole('button', { name: 'Discard' }).click();
        gate.release();
        await waitFor(async () => (await byId(A, id).getAttribute('data-deleted')) === 'true', {
            timeout: ui.T,
            what: "alice's page shows the server's state (deleted) after Discard",
        });
        assert.equal(await byId(A, id).locator('[data-testid=op-failed]').count(), 0);
    } finally {
        gate.release();
    }
});
