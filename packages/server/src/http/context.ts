import type { Logger } from "pino";
import type { AuthenticatedKey } from "../accounts/service.js";

export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    auth: AuthenticatedKey | undefined;
    /** Set when the client went away before the answer (disconnect, body timeout): why. */
    clientGone?: string;
  };
}
