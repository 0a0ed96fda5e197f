/** Tasks (being built: issue #17; replaced by the page itself before this session ends). */
export function Tasks(_props: { query: URLSearchParams }) {
  return <h1>Tasks</h1>;
}
