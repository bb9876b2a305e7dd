//! Operator tools that run beside the server, not in it: `handover doctor` (configuration and
//! running-server checks), `handover admin backup` / `restore` (docs/OPERATIONS.md).
