export { ALL_SCOPES, isScope, type Scope } from "./accounts/keys.js";
export { type OfflineLifecycle, offlineLifecycle } from "./accounts/lifecycle-offline.js";
export { AccountService } from "./accounts/service.js";
export { BackupError, type BackupProgress, type BackupSummary, createBackup } from "./backup/create.js";
export {
  ArchiveInvalid,
  type RestoreProgress,
  RestoreRefused,
  type RestoreSummary,
  restoreBackup,
} from "./backup/restore.js";
export { bootstrapDevAccount, existingDevAccount } from "./bootstrap.js";
export { type Config, ConfigError, loadConfig } from "./config.js";
export { ApiError } from "./errors.js";
export { ListenError } from "./http/listen.js";
export { ledgerSummary } from "./ledger/ledger.js";
export { createLogger } from "./logger.js";
export { type OperatorStats, operatorStats } from "./ops/stats.js";
export { formatVerifyReport, type VerifyReport, verifyStore } from "./ops/verify.js";
export { providerCaps } from "./providers/build.js";
export { applyMigrations, openStore, type ProcessRole, type RunningServer, sqlitePath, startServer } from "./server.js";
export { openStorage } from "./storage/build.js";
export { migrateToLatest, type StoreHandle } from "./store/db.js";
export { type MigrationState, migrationState, NewerDatabaseError } from "./store/migration-state.js";
export { type AdminUsage, adminUsage } from "./usage/report.js";
export { resolveBucketRange } from "./usage/time-range.js";
export { systemClock } from "./util/clock.js";
