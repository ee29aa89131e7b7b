//! Asynchronous jobs, as in the RpcNode seed: `startJob {job_id, client_id?,
//! fail?}` answers `{"success": true, job_id, "status": "started"}` at once;
//! background work then sends five `jobProgress {job_id, step, total}` and
//! `jobComplete {job_id, result: "success"}`, or `jobFailed {job_id, error}`
//! at step 3 when `fail` is true. They go to the calling WebSocket connection,
//! or over HTTP to the client named by `client_id` (with neither, the job runs
//! untold). `step_delay_ms` in `jobs.toml` sets the pace (default 200).

use rpcnode_sdk::host::{self, LogLevel};
use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, json};
use serde::{Deserialize, Serialize};

const STEPS: u32 = 5;

#[derive(Deserialize)]
struct Start {
    job_id: Value,
    client_id: Option<String>,
    #[serde(default)]
    fail: bool,
}

/// One step of a job, passed from step to step.
#[derive(Serialize, Deserialize)]
struct Step {
    job_id: Value,
    client_id: Option<String>,
    step: u32,
    fail: bool,
}

fn delay() -> u32 {
    host::config("step_delay_ms").unwrap_or(200)
}

fn start_job(request: &Request) -> Result<Value, RpcError> {
    let Start {
        job_id,
        client_id,
        fail,
    } = request.params()?;
    let first = Step {
        job_id: job_id.clone(),
        client_id: request.client_id().map(str::to_owned).or(client_id),
        step: 1,
        fail,
    };
    host::spawn("job_step", &json!(first), delay()).map_err(RpcError::internal)?;
    Ok(json!({ "success": true, "job_id": job_id, "status": "started" }))
}

/// Tell the job's client, if it has one.
fn tell(step: &Step, method: &str, params: &Value) -> Result<(), String> {
    match &step.client_id {
        Some(client_id) => host::notify(client_id, method, params),
        None => Ok(()),
    }
}

fn job_step(request: &Request) -> Result<Value, RpcError> {
    let step: Step = request.params()?;
    let job_id = &step.job_id;
    let done = if step.fail && step.step == 3 {
        tell(
            &step,
            "jobFailed",
            &json!({ "job_id": job_id, "error": format!("step {} failed", step.step) }),
        )
    } else {
        let progress = json!({ "job_id": job_id, "step": step.step, "total": STEPS });
        tell(&step, "jobProgress", &progress).and_then(|()| {
            if step.step == STEPS {
                let complete = json!({ "job_id": job_id, "result": "success" });
                tell(&step, "jobComplete", &complete)
            } else {
                let next = Step {
                    step: step.step + 1,
                    job_id: job_id.clone(),
                    client_id: step.client_id.clone(),
                    fail: step.fail,
                };
                host::spawn("job_step", &json!(next), delay())
            }
        })
    };
    if let Err(error) = done {
        // The client left, or the host refused more work: the job ends here.
        host::log(LogLevel::Info, &format!("job {job_id} stopped: {error}"));
    }
    Ok(Value::Null)
}

fn plugin() -> Plugin {
    Plugin::new("jobs", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("startJob", start_job)
                .summary("Start a job that reports its progress")
                .params_schema(json!({
                    "type": "object",
                    "properties": {
                        "job_id": { "description": "Any JSON value naming the job" },
                        "client_id": { "type": "string", "description": "Who to tell when called over HTTP" },
                        "fail": { "type": "boolean", "description": "Fail at step 3, to show jobFailed" }
                    },
                    "required": ["job_id"]
                })),
        )
        .method(Method::new("job_step", job_step).internal())
}

export!(plugin);
