import { initials, nameHue } from '../lib/names.js';

// A round avatar with the name's initials on a colour derived from the name
// (the seed shipped one SVG per user; this works for any name).
export default function Avatar({ name, online, size = 'h-10 w-10', showStatus = true }) {
    const hue = nameHue(name);
    const group = String(name).startsWith('#');
    return (
        <span className={`relative inline-flex shrink-0 ${size}`} aria-hidden="true">
            <span
                className={`flex h-full w-full items-center justify-center ${group ? 'rounded-xl' : 'rounded-full'} text-sm font-semibold text-white`}
                style={{ background: `hsl(${hue} 55% 45%)` }}
            >
                {group ? '#' : initials(name)}
            </span>
            {showStatus && !group && (
                <span className={`absolute right-0 bottom-0 h-3 w-3 rounded-full border-2 border-white ${online ? 'bg-emerald-500' : 'bg-slate-300'}`} />
            )}
        </span>
    );
}
