// api.js - the HTTP API (docs/protocol.md "HTTP API"): register, login,
// logout, user search. Every call resolves to {ok, status, data, error} where
// error is a sentence to show the user; nothing throws.

const MESSAGES = {
    name_taken: 'That user name is taken. Pick another one, or log in.',
    bad_credentials: 'Wrong user name or password.',
    invalid_username: 'Use 1 to 32 characters: a-z, 0-9, "_", "." and "-".',
    invalid_password: 'A password has 8 to 1024 characters.',
    unauthorized: 'Your session has expired. Please log in again.',
    unavailable: 'The server is unavailable right now. Try again in a moment.',
    rate_limited: 'Too many attempts. Wait a moment and try again.',
};

async function call(fetchFn, method, path, body) {
    let res;
    try {
        res = await fetchFn(path, {
            method,
            credentials: 'same-origin',
            headers: body ? { 'content-type': 'application/json' } : {},
            body: body ? JSON.stringify(body) : undefined,
        });
    } catch {
        return { ok: false, status: 0, data: null, error: 'Cannot reach the server. Check your connection.' };
    }
    let data;
    const text = await res.text().catch(() => '');
    try {
        data = text ? JSON.parse(text) : null;
    } catch {
        data = null;
    }
    if (res.ok) return { ok: true, status: res.status, data, error: '' };
    const code = data && data.error;
    const error = MESSAGES[code] || (data && data.message) || `The server answered ${res.status}.`;
    return { ok: false, status: res.status, data, error, code };
}

export function createApi(fetchFn = (...a) => globalThis.fetch(...a)) {
    return {
        register: (username, password) => call(fetchFn, 'POST', '/api/register', { username, password }),
        login: (username, password) => call(fetchFn, 'POST', '/api/login', { username, password }),
        logout: () => call(fetchFn, 'POST', '/api/logout'),
        // 200 with a list while the cookie is valid; 401 once it is not
        users: (q = '') => call(fetchFn, 'GET', `/api/users?q=${encodeURIComponent(q)}`),
    };
}
