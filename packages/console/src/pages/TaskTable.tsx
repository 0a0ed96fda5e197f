/** A table of tasks, linking each to its detail page; used by the overview and the list. */
import type { Task } from "@framegate/sdk";
import { formatCredits, formatInstant } from "../format.js";
import { href } from "../routes.js";
import { StatusBadge } from "../ui.js";

export function TaskTable({ tasks, caption }: { tasks: Task[]; caption: string }) {
  return (
    <div class="table-wrap">
      <table class="tasks">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Task</th>
            <th scope="col">Status</th>
            <th scope="col">Model</th>
            <th scope="col">Credits</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {tasks.map((task) => (
            <tr key={task.id}>
              <th scope="row">
                <a href={href(`/generations/${encodeURIComponent(task.id)}`)}>{task.id}</a>
                {task.client_request_id ? <div class="muted small">{task.client_request_id}</div> : null}
              </th>
              <td>
                <StatusBadge task={task} />
              </td>
              <td>{task.model}</td>
              <td>{formatCredits(task.status === "succeeded" ? task.final_credits : task.reserved_credits)}</td>
              <td>{formatInstant(task.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
