/** Ledger (being built: issue #17; replaced by the page itself before this session ends). */
export function Ledger(_props: { query: URLSearchParams }) {
  return <h1>Ledger</h1>;
}
