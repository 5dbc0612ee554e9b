// ui.mjs - what a user does on the page, and what the tests read back from
// it, in one place (selectors are the client's data-testid / roles).
import { waitFor } from '../../integration/lib/cluster.mjs';

export const PASSWORD = 'correct horse battery';
export const T = 15000; // generous: two shared cores, four engineers

export async function register(page, name, password = PASSWORD) {
    await page.getByRole('button', { name: 'Create an account' }).click();
    await fillAuth(page, name, password, 'Create account');
}

export async function login(page, name, password = PASSWORD) {
    await fillAuth(page, name, password, 'Log in');
}

async function fillAuth(page, name, password, button) {
    await page.locator('input[name=username]').fill(name);
    await page.locator('input[name=password]').fill(password);
    await page.getByRole('button', { name: button, exact: true }).click();
}

export async function signedInAs(page, name) {
    await page.locator('[data-testid=me]', { hasText: name }).waitFor({ timeout: T });
    await online(page);
}

export async function online(page) {
    await page.locator('[data-testid=conn-banner][data-state=online]').waitFor({ state: 'attached', timeout: T });
}

export const conv = (page, key) => page.locator(`[data-testid=conv][data-key="${key}"]`);

export async function openConv(page, key) {
    await conv(page, key).click({ timeout: T });
    await page.locator('[data-testid=chat-title]', { hasText: key }).waitFor({ timeout: T });
}

// Starts a conversation with someone not in the list yet: the search box.
export async function startChat(page, name) {
    await page.locator('#user-search').fill(name);
    await page.locator('[data-testid=search-result]', { hasText: name }).first().click({ timeout: T });
    await page.locator('[data-testid=chat-title]', { hasText: name }).waitFor({ timeout: T });
}

export async function send(page, text) {
    const box = page.locator('#composer');
    await box.fill(text);
    await box.press('Enter');
}

// Every bubble of the open conversation: {id, text, from, status}.
export function messages(page) {
    return page.$$eval('[data-testid=msg]', (els) =>
        els.map((e) => ({
            id: e.dataset.id ? Number(e.dataset.id) : null,
            text: e.querySelector('[data-testid=msg-text]').textContent,
            from: e.dataset.from,
            status: e.dataset.status || null,
        })),
    );
}

// Waits until the open conversation shows every text in `texts`.
export async function waitTexts(page, texts, what = 'messages') {
    return waitFor(
        async () => {
            const have = new Set((await messages(page)).filter((m) => m.id).map((m) => m.text));
            const missing = texts.filter((t) => !have.has(t));
            if (missing.length) throw new Error(`missing ${JSON.stringify(missing)}`);
            return true;
        },
        { timeout: T, what },
    );
}

export async function badge(page, key) {
    // allTextContents() does not wait: count() then textContent() would wait up to
    // 30 s for a badge that disappeared in between (the read receipt landing)
    const t = await conv(page, key).locator('[data-testid=unread-badge]').allTextContents();
    return t.length ? t[0].trim() : null;
}

export async function waitBadge(page, key, want) {
    return waitFor(async () => (await badge(page, key)) === want || Promise.reject(new Error(`badge ${await badge(page, key)}`)), {
        timeout: T,
        what: `unread badge of ${key} = ${want}`,
    });
}

export async function statusOf(page, text) {
    const m = (await messages(page)).find((x) => x.text === text);
    return m ? m.status : undefined;
}

export async function waitStatus(page, text, want) {
    return waitFor(async () => (await statusOf(page, text)) === want || Promise.reject(new Error(`status ${await statusOf(page, text)}`)), {
        timeout: T,
        what: `status of "${text}" = ${want}`,
    });
}
