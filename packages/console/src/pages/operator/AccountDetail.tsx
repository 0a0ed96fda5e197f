/** Account (being built: issue #17; replaced by the page itself before this session ends). */
export function AccountDetail(_props: { id: string }) {
  return <h1>Account</h1>;
}
