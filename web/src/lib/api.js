// api.js - the HTTP API (docs/protocol.md "HTTP API" and "v1 additions:
// sessions and safety"): register, login, logout, user search, and the
// account routes (sessions, revoke, log out everywhere, password change).
// Every call resolves to {ok, status, data, error, code, retryAfter} where
// error is a sentence to show the user; nothing throws. Authentication is the
// parley_token cookie (HttpOnly, set by the gateway) alone: no token is kept
// by the page or put in any URL.

const MESSAGES = {
    name_taken: 'That user name is taken. Pick another one, or log in.',
    bad_credentials: 'Wrong user name or password.',
    invalid_username: 'Use 1 to 32 characters: a-z, 0-9, "_", "." and "-".',
    invalid_password: 'A password has 8 to 1024 characters.',
    unauthorized: 'Your session has expired. Please log in again.',
    unavailable: 'The server is unavailable right now. Try again in a moment.',
    rate_limited: 'Too many attempts. Wait a moment and try again.',
    forbidden_origin: "The server does not accept requests from this page's address.",
    account_disabled: 'This account is disabled. Ask the administrator.',
};

// "30 seconds", "1 minute", "5 minutes" (Retry-After is in seconds)
export function waitText(seconds) {
    if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`;
    const m = Math.ceil(seconds / 60);
    return `${m} minute${m === 1 ? '' : 's'}`;
}

// Retry-After as whole seconds (the delta form; an HTTP date is turned into
// the seconds left), or 0 when absent or unreadable.
export function retryAfterSeconds(value, now = Date.now()) {
    if (value === null || value === undefined || value === '') return 0;
    const s = String(value).trim();
    if (/^\d+$/.test(s)) return Number(s);
    const t = Date.parse(s);
    return Number.isFinite(t) ? Math.max(0, Math.ceil((t - now) / 1000)) : 0;
}

// messages: per-route words for codes or statuses ({401: '...'}), tried
// before the common ones
async function call(fetchFn, method, path, body, messages = {}) {
    let res;
    try {
        res = await fetchFn(path, {
            method,
            credentials: 'same-origin',
            headers: body ? { 'content-type': 'application/json' } : {},
            body: body ? JSON.stringify(body) : undefined,
        });
    } catch {
        return { ok: false, status: 0, data: null, error: 'Cannot reach the server. Check your connection.', code: 'network', retryAfter: 0 };
    }
    let data;
    const text = await res.text().catch(() => '');
    try {
        data = text ? JSON.parse(text) : null;
    } catch {
        data = null;
    }
    if (res.ok) return { ok: true, status: res.status, data, error: '', code: '', retryAfter: 0 };
    const code = (data && data.error) || '';
    const retryAfter = retryAfterSeconds(res.headers && typeof res.headers.get === 'function' ? res.headers.get('retry-after') : null);
    let error;
    if (res.status === 429 || code === 'rate_limited') {
        error = retryAfter > 0 ? `Too many attempts. Try again in ${waitText(retryAfter)}.` : MESSAGES.rate_limited;
    } else {
        error = messages[code] || messages[res.status] || MESSAGES[code] || (data && data.message) || `The server answered ${res.status}.`;
    }
    return { ok: false, status: res.status, data, error, code, retryAfter };
}

export function createApi(fetchFn = (...a) => globalThis.fetch(...a)) {
    return {
        register: (username, password) => call(fetchFn, 'POST', '/api/register', { username, password }),
        login: (username, password) => call(fetchFn, 'POST', '/api/login', { username, password }),
        logout: () => call(fetchFn, 'POST', '/api/logout'),
        // 200 with a list while the cookie is valid; 401 once it is not
        users: (q = '') => call(fetchFn, 'GET', `/api/users?q=${encodeURIComponent(q)}`),
        // every session of this user: [{id, created, last_seen, agent, current}]
        sessions: () => call(fetchFn, 'GET', '/api/sessions'),
        revokeSession: (id) =>
            call(fetchFn, 'DELETE', `/api/sessions/${encodeURIComponent(id)}`, undefined, {
                404: 'That session has ended already.',
            }),
        // 204; this session ends too
        logoutAll: () => call(fetchFn, 'POST', '/api/logout-all'),
        // 200 {username, token} and a fresh cookie; every other session ends
        password: (oldPassword, newPassword) =>
            call(
                fetchFn,
                'POST',
                '/api/password',
                { old_password: oldPassword, new_password: newPassword },
                {
                    bad_credentials: 'The current password is wrong.',
                    invalid_password: 'The new password must have 8 to 1024 characters.',
                },
            ),
    };
}
