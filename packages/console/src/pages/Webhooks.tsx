/** Webhooks (being built: issue #17; replaced by the page itself before this session ends). */
export function Webhooks() {
  return <h1>Webhooks</h1>;
}
