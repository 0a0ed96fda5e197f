/** Task (being built: issue #17; replaced by the page itself before this session ends). */
export function TaskDetail(_props: { id: string }) {
  return <h1>Task</h1>;
}
