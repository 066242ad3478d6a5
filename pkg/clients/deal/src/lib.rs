//! deal-service's public contract: its DTOs (seed 004, section 4), the payloads of its
//! events (API.md "Events") with their subjects, and a typed client; `MockDealClient`
//! with the `mock` feature (tests only).

pub mod subjects;
mod cached;
mod client;
mod dto;
#[cfg(any(test, feature = "mock"))]
mod mock;

pub use cached::CachedDealClient;
pub use client::{DealClient, HttpDealClient, MAX_BATCH};
pub use crm_client_core::{CallContext, ClientConfig, ClientError};
pub use dto::{
    ByCurrency, single_currency, DealBasicInfo, DealBatch, DealClosedEvent, DealContactInfo, DealResponse, DealStageChangedEvent, DealTrashed, ForecastPeriod,
    ForecastResponse, ForecastTotals, PipelineStage, PipelineStageInfo, PipelineTotals, PipelineViewResponse, StageKind,
    StageHistoryEntry, Unscheduled,
};
#[cfg(any(test, feature = "mock"))]
pub use mock::MockDealClient;
