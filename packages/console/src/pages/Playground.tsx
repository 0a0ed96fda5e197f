/** Playground (being built: issue #17; replaced by the page itself before this session ends). */
export function Playground() {
  return <h1>Playground</h1>;
}
