// time.js - timestamps and day separators for the chat pane. `now` and the
// time zone come from the caller's Date, so tests can pin them.

export function dayKey(ms) {
    const d = new Date(ms);
    return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

export function formatTime(ms) {
    const d = new Date(ms);
    return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// "Today", "Yesterday", "Mon 3 Mar" (this year) or "3 Mar 2024".
export function dayLabel(ms, now = Date.now()) {
    const d = new Date(ms);
    const today = new Date(now);
    if (dayKey(ms) === dayKey(now)) return 'Today';
    const y = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (dayKey(ms) === dayKey(y.getTime())) return 'Yesterday';
    const dm = `${d.getDate()} ${MONTHS[d.getMonth()]}`;
    if (d.getFullYear() === today.getFullYear()) {
        return `${['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getDay()]} ${dm}`;
    }
    return `${dm} ${d.getFullYear()}`;
}

// For the conversation list: the time today, else the day.
export function shortStamp(ms, now = Date.now()) {
    if (!ms) return '';
    if (dayKey(ms) === dayKey(now)) return formatTime(ms);
    const l = dayLabel(ms, now);
    return l === 'Yesterday' ? l : l.replace(/^\w{3} /, '');
}

// Splits messages (sorted) into [{day, label, items}] groups for separators.
export function groupByDay(messages, now = Date.now(), at = (m) => m.sent) {
    const out = [];
    for (const m of messages) {
        const t = at(m);
        const k = dayKey(t);
        if (!out.length || out[out.length - 1].day !== k) out.push({ day: k, label: dayLabel(t, now), items: [] });
        out[out.length - 1].items.push(m);
    }
    return out;
}

// A moment with its day: "today at 12:38", "yesterday at 08:05", "3 Mar at 17:00".
export function when(ms, now = Date.now()) {
    const day = shortStamp(ms, now);
    if (dayKey(ms) === dayKey(now)) return `today at ${day}`;
    return `${day === 'Yesterday' ? 'yesterday' : day} at ${formatTime(ms)}`;
}

// For "last seen": "just now", "5 min ago", "3 h ago", then when() ("yesterday at 08:05").
export function ago(ms, now = Date.now()) {
    if (!ms) return 'unknown';
    const s = Math.round((now - ms) / 1000);
    if (s < 60) return 'just now';
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (dayKey(ms) === dayKey(now) || s < 6 * 3600) return `${Math.floor(s / 3600)} h ago`;
    return when(ms, now);
}
