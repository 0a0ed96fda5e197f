/** API keys (being built: issue #17; replaced by the page itself before this session ends). */
export function ApiKeys() {
  return <h1>API keys</h1>;
}
