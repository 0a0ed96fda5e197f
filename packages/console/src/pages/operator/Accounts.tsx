/** Accounts (being built: issue #17; replaced by the page itself before this session ends). */
export function Accounts() {
  return <h1>Accounts</h1>;
}
