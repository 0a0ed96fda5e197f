/** System (being built: issue #17; replaced by the page itself before this session ends). */
export function System() {
  return <h1>System</h1>;
}
