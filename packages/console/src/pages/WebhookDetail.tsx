/** Webhook endpoint (being built: issue #17; replaced by the page itself before this session ends). */
export function WebhookDetail(_props: { id: string }) {
  return <h1>Webhook endpoint</h1>;
}
