// One formatter for the code, so nobody formats by hand or debates it. The options match the style the
// code was written in: single quotes, semicolons, trailing commas everywhere, and lines up to 160
// characters (measured before Prettier came in: under 0.5 % of the lines were longer, while 140 would
// have rewrapped twice as many lines as 160). `npm run format` rewrites, `npm run format:check` only checks.
export default {
  printWidth: 160,
  singleQuote: true,
  semi: true,
  trailingComma: 'all',
  arrowParens: 'always',
};
