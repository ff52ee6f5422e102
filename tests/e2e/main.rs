//! The end-to-end suite, one test binary (so the AWS SDK is linked once and
//! one DynamoDB Local serves every test): replayed events, real DynamoDB
//! Local, the WeChat and Tencent emulators over loopback, the fuzz corpus,
//! the documentation's examples, the template against the route table, answers
//! against `openapi.yaml`, and the demo page in a real browser.
//!
//! `tests/watch.rs` is a binary of its own: it sets environment variables,
//! which only a process's sole test may do.

mod authorizer_faults;
mod bootstraps;
mod browser;
mod deadline;
mod dev_server;
mod door;
mod dynamo_requests;
mod faults;
mod flow_costs;
mod fuzz_regressions;
mod guard;
mod guard_costs;
mod guard_doors;
mod iam;
mod logs;
mod openapi;
mod ratelimit;
mod readme;
mod replay;
mod retries;
mod secrets;
mod sms;
mod stack;
mod store_conformance;
mod store_conformance_passes;
mod store_conformance_sms;
mod store_conformance_wechat;
mod table_access;
mod template;
mod tencent;
mod velocity;
mod wechat;
mod wechat_phone;
mod wechat_rig;
mod wechat_sessions;
mod write_units;
mod wx_risk;
mod wx_risk_door;
