// Prettier for Parley's JavaScript (tests/lint/js.sh passes it with --config:
// Prettier would not find it from web/ or tests/ on its own). The options
// follow the code as it was written before Prettier checked it, so that
// adopting it changed as few lines as possible: 4-space indents, single
// quotes (double in JSX attributes), semicolons, trailing commas, and long
// lines (160 columns: of 100..180 tried, the width that rewrote the fewest).
export default {
    printWidth: 160,
    tabWidth: 4,
    useTabs: false,
    semi: true,
    singleQuote: true,
    jsxSingleQuote: false,
    quoteProps: 'as-needed',
    trailingComma: 'all',
    bracketSpacing: true,
    bracketSameLine: false,
    arrowParens: 'always',
    endOfLine: 'lf',
};
