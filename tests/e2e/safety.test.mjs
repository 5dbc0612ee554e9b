// The web client's account and safety screens in a real browser against a
// real deployment (lib/stack.mjs: redis, a router, two gateways serving
// web/dist, haproxy with site A -> gw1 and site B -> gw2): the sessions list
// and revoking (the revoked browser is logged out at once), log out
// everywhere, password change (the other session ends, the new password
// logs in), block (the blocked user's text is refused, presence hidden both
// ways, unblock), and group roles (the owner names an admin, the admin
// removes a member, who sees it and gets nothing more).
//
// Each browser context is one device (its own cookie, so its own server-side
// session). Tests run in order and build on each other (the same users).
// What the gateway does not do yet (the sessions API, `block`, group roles:
// docs/protocol.md "v1 additions") is probed once, and a test that needs a
// missing one fails naming it.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client } from '../integration/lib/client.mjs';
import { makeUsers, waitFor } from '../integration/lib/cluster.mjs';
import { Stack } from './lib/stack.mjs';
import * as ui from './lib/ui.mjs';

const stack = new Stack('e2e-safety');
const cluster = stack.cluster;
const missing = new Map(); // feature -> reason
const NEW_PASSWORD = 'a brand new passphrase';
const dev = {}; // devices (pages), by name

before(async () => {
    await stack.start();
    const port = cluster.gw(0);
    const tokens = await makeUsers(port, ['probe1', 'probe2']);
    // the sessions API
    const r = await fetch(`http://127.0.0.1:${port}/api/sessions`, {
        headers: { authorization: `Bearer ${tokens.probe1}`, cookie: `parley_token=${tokens.probe1}` },
    });
    await r.text();
    if (r.status !== 200) missing.set('sessions', `GET /api/sessions answers ${r.status} (the sessions API has not landed)`);
    // block, and group roles
    const P = await Client.connect(port, tokens.probe1);
    P.send({ kind: 'block', user: 'probe2', on: true });
    const e = await P.next((x) => x.kind === 'error', 1500).catch(() => null);
    if (e && e.code === 'unknown_kind') missing.set('block', `the gateway answers "block" with unknown_kind (${e.message})`);
    else P.send({ kind: 'block', user: 'probe2', on: false });
    P.send({ kind: 'group', op: 'create', name: '#probe', members: ['probe2'] });
    const g = await P.next((x) => x.kind === 'group' || x.kind === 'error', 3000).catch(() => null);
    if (!g || g.kind !== 'group' || typeof g.owner !== 'string') missing.set('roles', `group frames carry no owner (got ${g ? JSON.stringify(g) : 'nothing'})`);
    await P.close();
});
after(() => stack.stop());

function needs(t, ...features) {
    const why = features.filter((k) => missing.has(k)).map((k) => missing.get(k));
    // the server must do it: a missing feature fails the test, named (never a skip)
    assert.equal(why.length, 0, `the gateway lacks what this test needs: ${why.join('; ')}`);
    return true;
}

// A new device (browser context) on a site, signed in as name.
async function device(site, name, { password = ui.PASSWORD, registerFirst = false } = {}) {
    const page = await stack.page(site);
    await page.locator('form[aria-label="Log in"]').waitFor({ timeout: ui.T });
    if (registerFirst) await ui.register(page, name, password);
    else await ui.login(page, name, password);
    await ui.signedInAs(page, name);
    return page;
}

const account = (page) => page.locator('[data-testid=account]');

async function openAccount(page) {
    await page.getByRole('button', { name: 'Account', exact: true }).click();
    await account(page).waitFor({ timeout: ui.T });
}

// The sessions the account dialog lists: [{current, text}]
async function sessionRows(page) {
    return account(page)
        .locator('[data-testid=session]')
        .evaluateAll((els) => els.map((e) => ({ current: e.dataset.current === 'true', text: e.textContent })));
}

async function waitSessions(page, n) {
    return waitFor(
        async () => {
            const rows = await sessionRows(page);
            if (rows.length !== n) throw new Error(`${rows.length} sessions listed`);
            return rows;
        },
        { timeout: ui.T, what: `${n} sessions listed` },
    );
}

// The page is back at the login screen, saying why.
async function loggedOut(page, why) {
    await page.locator('form[aria-label="Log in"]').waitFor({ timeout: ui.T });
    const notice = await page.locator('[data-testid=auth-notice]').textContent({ timeout: ui.T });
    assert.match(notice, why);
}

cluster.test('sessions page: each device listed; revoking one logs that browser out at once; log out everywhere', async (t) => {
    if (!needs(t, 'sessions')) return;
    const A1 = await device('A', 'alice', { registerFirst: true });
    const A2 = await device('B', 'alice');
    dev.A1 = A1;
    await openAccount(A1);
    const rows = await waitSessions(A1, 2);
    assert.deepEqual(
        rows.map((r) => r.current),
        [true, false],
        'this device first, marked',
    );
    assert.match(rows[0].text, /This device/);
    assert.match(rows[1].text, /Chrome on Linux/);
    assert.match(rows[1].text, /Logged in .*active/);
    await stack.shot(A1, 'sessions');

    // revoke the other device: it is back at the login screen at once, saying why
    const t0 = Date.now();
    await account(A1)
        .locator('[data-testid=session][data-current=false]')
        .getByRole('button', { name: /^Log out/ })
        .click();
    await loggedOut(A2, /logged out: this session was ended/);
    t.diagnostic(`the revoked page showed the login screen ${Date.now() - t0} ms after the click`);
    await waitSessions(A1, 1);
    await stack.shot(A2, 'session-revoked');
    // its cookie stays refused: a reload stays at the login screen
    await A2.reload();
    await A2.locator('form[aria-label="Log in"]').waitFor({ timeout: ui.T });
    // this device goes on
    await ui.online(A1);

    // log out everywhere: both devices end
    await ui.login(A2, 'alice');
    await ui.signedInAs(A2, 'alice');
    await A1.getByRole('button', { name: 'Close account settings' }).click();
    await openAccount(A1);
    await waitSessions(A1, 2);
    await account(A1).getByRole('button', { name: 'Log out everywhere' }).click();
    await account(A1).getByRole('button', { name: 'Log out all' }).click();
    await loggedOut(A1, /logged out on every device/);
    await loggedOut(A2, /logged out: this session was ended/);
    await A2.context().close();
});

cluster.test('change password: refusals in words; the other session is logged out, this one goes on; the new password logs in', async (t) => {
    if (!needs(t, 'sessions')) return;
    const A1 = dev.A1 || (await stack.page('A'));
    if (!dev.A1) await makeUsers(cluster.gw(0), ['alice']).catch(() => {});
    dev.A1 = A1;
    await ui.login(A1, 'alice');
    await ui.signedInAs(A1, 'alice');
    const A2 = await device('B', 'alice');
    await openAccount(A1);
    const form = account(A1).locator('form[aria-label="Change password"]');
    const fill = async (old, next, again = next) => {
        await form.locator('input[name=old-password]').fill(old);
        await form.locator('input[name=new-password]').fill(next);
        await form.locator('input[name=new-password-again]').fill(again);
        await form.getByRole('button', { name: 'Change password' }).click();
    };
    // refused by the page: the two new ones differ
    await fill(ui.PASSWORD, NEW_PASSWORD, `${NEW_PASSWORD}!`);
    assert.match(await form.locator('[data-testid=password-error]').textContent(), /do not match/);
    // refused by the server: 401 wrong old password
    await fill('not my password', NEW_PASSWORD);
    await form.locator('[data-testid=password-error]', { hasText: 'The current password is wrong.' }).waitFor({ timeout: ui.T });
    await stack.shot(A1, 'password-wrong');
    // the right one: this page stays in, the other device is logged out
    await fill(ui.PASSWORD, NEW_PASSWORD);
    await form.locator('[data-testid=password-done]').waitFor({ timeout: ui.T });
    await loggedOut(A2, /logged out: this session was ended/);
    await stack.shot(A1, 'password-changed');
    await waitSessions(A1, 1);
    await A1.getByRole('button', { name: 'Close account settings' }).click();
    await ui.online(A1); // reconnected with the fresh cookie
    assert.equal(await A1.locator('form[aria-label="Log in"]').count(), 0);
    await A1.reload();
    await ui.signedInAs(A1, 'alice'); // the new cookie
    // the old password no longer logs in; the new one does
    await ui.login(A2, 'alice', ui.PASSWORD);
    await A2.locator('[data-testid=auth-error]', { hasText: 'Wrong user name or password' }).waitFor({ timeout: ui.T });
    await ui.login(A2, 'alice', NEW_PASSWORD);
    await ui.signedInAs(A2, 'alice');
    dev.A2 = A2;
});

cluster.test("block: the blocked user's texts are refused, presence hidden both ways, other sessions follow; unblock", async (t) => {
    if (!needs(t, 'block')) return;
    const pw = missing.has('sessions') ? ui.PASSWORD : NEW_PASSWORD;
    const A = dev.A1 || (await device('A', 'alice', { registerFirst: true }));
    dev.A1 = A;
    const B = await device('B', 'bob', { registerFirst: true });
    dev.B = B;
    // they talk
    await ui.conv(B, 'alice').waitFor({ timeout: ui.T });
    await ui.openConv(B, 'alice');
    await B.locator('[data-testid=presence]', { hasText: 'Online' }).waitFor({ timeout: ui.T });
    await ui.send(B, 'hi alice');
    await ui.openConv(A, 'bob');
    await ui.waitTexts(A, ['hi alice']);
    await waitFor(async () => (await ui.conv(A, 'bob').getAttribute('data-online')) === 'true', { timeout: ui.T, what: 'bob online for alice' });

    // alice blocks bob from the conversation header
    await A.getByRole('button', { name: 'Block', exact: true }).click();
    await A.getByRole('button', { name: 'Block bob' }).click();
    await A.locator('[data-testid=presence]', { hasText: 'Blocked' }).waitFor({ timeout: ui.T });
    await A.locator('[data-testid=blocked-note]').waitFor({ timeout: ui.T });
    assert.equal(await ui.conv(A, 'bob').getAttribute('data-blocked'), 'true');
    assert.equal(await ui.conv(A, 'bob').getAttribute('data-online'), 'false', 'no presence of a blocked user');
    // alice's other device learns it from the server
    const A2 = dev.A2 || (await device('A', 'alice', { password: pw }));
    await waitFor(async () => (await ui.conv(A2, 'bob').getAttribute('data-blocked')) === 'true', {
        timeout: ui.T,
        what: "bob blocked on alice's other device",
    });
    await stack.shot(A, 'blocked');

    // bob sees no presence of alice (she is online): at once, after a reload
    // (hello), and in /api/users
    await waitFor(async () => (await ui.conv(B, 'alice').getAttribute('data-online')) === 'false', { timeout: ui.T, what: 'alice hidden from bob' });
    await B.reload();
    await ui.signedInAs(B, 'bob');
    await ui.conv(B, 'alice').waitFor({ timeout: ui.T });
    assert.equal(await ui.conv(B, 'alice').getAttribute('data-online'), 'false', 'alice hidden from bob in hello');
    const found = await B.evaluate(async () => (await (await fetch('/api/users?q=alice')).json()).find((u) => u.username === 'alice'));
    assert.equal(found && found.online, false, '/api/users hides her presence too');

    // bob's text is refused, in words; alice gets nothing
    await ui.openConv(B, 'alice');
    await ui.send(B, 'are you there?');
    await ui.waitStatus(B, 'are you there?', 'failed');
    assert.match(await B.locator('[data-testid=fail-reason]').first().textContent(), /alice is not accepting your messages/);
    await stack.shot(B, 'blocked-refused');

    // unblock (from the other device): bob's retry goes through, once
    await A2.locator('[data-testid=conv][data-key=bob]').click();
    await A2.getByRole('button', { name: 'Unblock', exact: true }).click();
    await waitFor(async () => (await ui.conv(A, 'bob').getAttribute('data-blocked')) === null, { timeout: ui.T, what: 'bob unblocked on alice' });
    await B.getByRole('button', { name: 'Retry' }).click();
    await ui.waitStatus(B, 'are you there?', 'sent').catch(async (e) => {
        if ((await ui.statusOf(B, 'are you there?')) !== 'read') throw e;
    });
    await ui.waitTexts(A, ['hi alice', 'are you there?']);
    assert.equal((await ui.messages(A)).filter((m) => m.text === 'are you there?').length, 1);
    await waitFor(async () => (await ui.conv(A, 'bob').getAttribute('data-online')) === 'true', { timeout: ui.T, what: 'bob online again for alice' });
    await A2.context().close();
    delete dev.A2;
});

cluster.test('group roles: the owner names an admin; the admin removes a member, who sees it and gets nothing more', async (t) => {
    if (!needs(t, 'roles')) return;
    const A = dev.A1 || (await device('A', 'alice', { registerFirst: true }));
    const B = dev.B || (await device('B', 'bob', { registerFirst: true }));
    const C = await device('B', 'carol', { registerFirst: true });
    // alice creates the closed group #crew with bob and carol
    await A.getByRole('button', { name: 'New group' }).click();
    await A.getByLabel('Group name').fill('crew');
    await A.getByLabel('Members (names, comma separated)').fill('bob, carol');
    await A.getByRole('button', { name: 'Create', exact: true }).click();
    await A.locator('[data-testid=chat-title]', { hasText: '#crew' }).waitFor({ timeout: ui.T });
    await ui.send(A, 'welcome to the crew');
    for (const P of [B, C]) {
        await ui.openConv(P, '#crew');
        await ui.waitTexts(P, ['welcome to the crew']);
    }
    const member = (P, name) => P.locator(`[data-testid=member][data-name="${name}"]`);
    const role = async (P, name) => member(P, name).getAttribute('data-role');
    const waitRole = (P, name, want) =>
        waitFor(async () => (await role(P, name)) === want || Promise.reject(new Error(`role ${await role(P, name)}`)), {
            timeout: ui.T,
            what: `${name} shown as ${want}`,
        });

    // alice, the owner: roles shown; she makes bob an admin
    await A.getByRole('button', { name: 'Members', exact: true }).click();
    await waitRole(A, 'alice', 'owner');
    await member(A, 'alice').locator('[data-testid=role]', { hasText: 'Owner' }).waitFor();
    await A.getByRole('button', { name: 'Make bob an admin' }).click();
    await waitRole(A, 'bob', 'admin');
    await stack.shot(A, 'group-roles');

    // carol, a member of a closed group: no Add, no controls on anyone
    await C.getByRole('button', { name: 'Members', exact: true }).click();
    await waitRole(C, 'bob', 'admin');
    assert.equal(await C.getByRole('button', { name: 'Add', exact: true }).count(), 0, 'only the owner and admins add to a closed group');
    assert.equal(await C.locator('[data-testid=members] button').count(), 0, 'no role controls for a member');

    // bob, an admin: may remove carol, not alice (the owner), names no admins
    await B.getByRole('button', { name: 'Members', exact: true }).click();
    await waitRole(B, 'bob', 'admin');
    assert.equal(await B.getByRole('button', { name: 'Remove alice from #crew' }).count(), 0);
    assert.equal(await B.getByRole('button', { name: /Make .* an admin/ }).count(), 0);
    await B.getByRole('button', { name: 'Remove carol from #crew' }).click();
    await B.locator('[role=group][aria-label="Confirm removing carol"]').getByRole('button', { name: 'Remove', exact: true }).click();
    await waitFor(async () => (await member(B, 'carol').count()) === 0, { timeout: ui.T, what: 'carol gone from the member list' });

    // carol's view: the group says so and takes no more input
    await C.locator('[data-testid=removed-note]', { hasText: 'bob removed you from #crew' }).waitFor({ timeout: ui.T });
    assert.equal(await C.locator('#composer').count(), 0);
    assert.equal(await ui.conv(C, '#crew').getAttribute('data-removed'), 'true');
    await stack.shot(C, 'group-removed');

    // and gets nothing more: a group message after the removal reaches bob, not
    // carol, although a 1:1 message alice sends her after it does
    await ui.send(A, 'after carol left');
    await ui.waitTexts(B, ['welcome to the crew', 'after carol left']);
    await ui.startChat(A, 'carol');
    await ui.send(A, 'sorry carol');
    await ui.openConv(C, 'alice');
    await ui.waitTexts(C, ['sorry carol']);
    await ui.openConv(C, '#crew');
    assert.deepEqual(
        (await ui.messages(C)).map((m) => m.text),
        ['welcome to the crew'],
    );
    // bob reloads: the roles are back when he opens the group (hello's entry carries them); the
    // page sends no group frame to learn them (a `join` could re-join an open group)
    const sent = [];
    const watch = (ws) => ws.on('framesent', ({ payload }) => sent.push(Buffer.from(payload)));
    B.on('websocket', watch);
    await B.reload();
    await ui.signedInAs(B, 'bob');
    await ui.openConv(B, '#crew');
    await B.getByRole('button', { name: 'Members', exact: true }).click();
    await waitRole(B, 'alice', 'owner');
    await waitRole(B, 'bob', 'admin');
    assert.equal(await B.getByRole('button', { name: 'Remove alice from #crew' }).count(), 0);
    B.off('websocket', watch);
    assert.ok(sent.length > 0, 'the frames the page sent are seen (history of #crew at least)');
    assert.equal(sent.filter((p) => p.includes('group') && p.includes('join')).length, 0, 'no join sent after the reload');
    // a reload: the group is no longer carol's
    await C.reload();
    await ui.signedInAs(C, 'carol');
    await ui.conv(C, 'alice').waitFor({ timeout: ui.T });
    assert.equal(await ui.conv(C, '#crew').count(), 0);
    await C.context().close();
});
