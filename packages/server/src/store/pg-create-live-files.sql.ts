/**
 * Migration 0016 (PostgreSQL only): a create checks, in its own transaction, that every file it
 * references is still live, now that an account can delete its files (DELETE /api/v1/files/{id}).
 *
 * References are resolved before the create's transaction (files/references.ts), so a delete can
 * commit in between. The check locks the referenced rows FOR SHARE: a delete (an UPDATE of the
 * row) that comes later waits until this create commits and then finds its task among the ones
 * that still need the file (so the file's bytes are kept until the task ends); a delete that
 * committed first leaves the row out of the locked set, and the create answers 'file_gone'
 * having written nothing. Either way no task ever references a file whose bytes are gone.
 *
 * framegate_create_generation is migration 0015's function with that check added after the
 * idempotency step (a replay still replays) and before the reservation (nothing to undo).
 */
import { CREATE_QUIET_0015 } from "./pg-create-quiet.sql.js";

const DECLARE_ANCHOR = "  s idempotency_keys;\nbegin\n";
const RESERVE_ANCHOR = "  update accounts a set balance = a.balance - t.reserved_credits";

const LIVE_FILES_CHECK = `  if cardinality(p_file_ids) > 0 then
    perform 1 from files f
      where f.id = any(p_file_ids) and f.account_id = t.account_id and f.deleted_at is null
      for share;
    get diagnostics v_live_files = row_count;
    if v_live_files < (select count(distinct r.file_id) from unnest(p_file_ids) as r(file_id)) then
      return query select 'file_gone', null::text, null::text, null::integer, null::text, null::text,
        null::text, null::text, null::bigint;
      return;
    end if;
  end if;

`;

function insertOnce(text: string, anchor: string, before: string, after = ""): string {
  if (text.split(anchor).length !== 2) {
    throw new Error(`migration 0016: ${JSON.stringify(anchor.trim())} not found once in framegate_create_generation`);
  }
  return text.replace(anchor, `${before}${anchor}${after}`);
}

export const CREATE_LIVE_FILES_0016 = (): string => {
  let text = CREATE_QUIET_0015();
  text = insertOnce(text, DECLARE_ANCHOR, "  v_live_files integer;\n");
  return insertOnce(text, RESERVE_ANCHOR, LIVE_FILES_CHECK);
};
