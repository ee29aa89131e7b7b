//! Asynchronous jobs: `startJob {job_id, fail?}` answers `{"status":"started"}`
//! at once; background work then sends the caller five `jobProgress`
//! notifications and `jobComplete`, or `jobFailed` at step 3 when `fail` is
//! true. `step_delay_ms` in `jobs.toml` sets the pace (default 200).

use rpcnode_sdk::host::{self, LogLevel};
use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, json};
use serde::{Deserialize, Serialize};

const STEPS: u32 = 5;

#[derive(Deserialize)]
struct Start {
    job_id: Value,
    #[serde(default)]
    fail: bool,
}

/// One step of a job, passed from step to step.
#[derive(Serialize, Deserialize)]
struct Step {
    job_id: Value,
    client_id: String,
    step: u32,
    fail: bool,
}

fn delay() -> u32 {
    host::config("step_delay_ms").unwrap_or(200)
}

fn start_job(request: &Request) -> Result<Value, RpcError> {
    let client_id = request.require_client()?.to_owned();
    let Start { job_id, fail } = request.params()?;
    let first = Step {
        job_id: job_id.clone(),
        client_id,
        step: 1,
        fail,
    };
    host::spawn("job_step", &json!(first), delay()).map_err(RpcError::internal)?;
    Ok(json!({ "status": "started", "job_id": job_id }))
}

fn job_step(request: &Request) -> Result<Value, RpcError> {
    let step: Step = request.params()?;
    let (job_id, client_id) = (&step.job_id, step.client_id.as_str());
    let sent = if step.fail && step.step == 3 {
        host::notify(
            client_id,
            "jobFailed",
            &json!({ "job_id": job_id, "step": step.step, "error": "step 3 failed" }),
        )
    } else {
        let progress = json!({ "job_id": job_id, "step": step.step, "total": STEPS, "progress": step.step * 100 / STEPS });
        host::notify(client_id, "jobProgress", &progress).and_then(|()| {
            if step.step == STEPS {
                host::notify(
                    client_id,
                    "jobComplete",
                    &json!({ "job_id": job_id, "result": { "steps": STEPS } }),
                )
            } else {
                let next = Step {
                    step: step.step + 1,
                    job_id: job_id.clone(),
                    client_id: client_id.to_owned(),
                    fail: step.fail,
                };
                host::spawn("job_step", &json!(next), delay())
            }
        })
    };
    if let Err(error) = sent {
        // The client left, or the host refused more work: the job ends here.
        host::log(LogLevel::Info, &format!("job {job_id} stopped: {error}"));
    }
    Ok(Value::Null)
}

fn plugin() -> Plugin {
    Plugin::new("jobs", env!("CARGO_PKG_VERSION"))
        .method(Method::new("startJob", start_job).summary("Start a job that reports its progress"))
        .method(Method::new("job_step", job_step).internal())
}

export!(plugin);
