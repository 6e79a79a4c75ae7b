//! Conversions between the SDK's types and the types a WIT bindings generator derives from
//! `wit/policy.wit`.
//!
//! wit-bindgen (in the guest) and wasmtime's `bindgen!` (in the host) derive the same Rust shapes
//! from the contract: records become structs with the same field names, variants become enums
//! with the same variant names, `list` becomes `Vec`, `string` becomes `String`. One macro
//! therefore writes the conversions for both sides, so they cannot drift apart.
//!
//! `wit_conversions!(path::to::generated::interface)` expands to a module `wit_convert` with
//! `to_wit_*` (SDK to generated) and `from_wit_*` (generated to SDK) functions. Conversions
//! from the generated side are fallible where a string must be a valid signal name.

/// Writes the `wit_convert` module for the generated bindings module at the given path.
#[doc(hidden)]
#[macro_export]
macro_rules! wit_conversions {
    ($($wit:tt)*) => {
        #[allow(dead_code, clippy::all)]
        pub(crate) mod wit_convert {
            use $($wit)* as wit;
            use $crate::{
                ComposeInfo, ContainerState, Context, Health, Outcome, PolicyInfo, ServiceFacts,
                Signal, Step, StepRecord, WaitCondition,
            };
            use ::std::time::Duration;

            fn millis(duration: Duration) -> u64 {
                u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
            }

            fn signal(name: &str) -> Result<Signal, String> {
                name.parse::<Signal>().map_err(|error| error.to_string())
            }

            pub fn to_wit_health(health: Health) -> wit::Health {
                match health {
                    Health::Starting => wit::Health::Starting,
                    Health::Healthy => wit::Health::Healthy,
                    Health::Unhealthy => wit::Health::Unhealthy,
                }
            }

            pub fn from_wit_health(health: wit::Health) -> Health {
                match health {
                    wit::Health::Starting => Health::Starting,
                    wit::Health::Healthy => Health::Healthy,
                    wit::Health::Unhealthy => Health::Unhealthy,
                }
            }

            pub fn to_wit_service(facts: &ServiceFacts) -> wit::ServiceFacts {
                wit::ServiceFacts {
                    id: facts.id.clone(),
                    name: facts.name.clone(),
                    image: facts.image.clone(),
                    labels: facts.labels.clone(),
                    stop_signal: facts.stop_signal.map(|signal| signal.name()),
                    stop_timeout_ms: facts.stop_timeout.map(millis),
                    command: facts.command.clone(),
                    init: facts.init,
                    restart_policy: facts.restart_policy.clone(),
                    health: facts.health.map(to_wit_health),
                    compose: facts.compose.as_ref().map(|compose| wit::ComposeInfo {
                        project: compose.project.clone(),
                        service: compose.service.clone(),
                        depends_on: compose.depends_on.clone(),
                    }),
                    started_at: facts.started_at.clone(),
                }
            }

            pub fn from_wit_service(facts: wit::ServiceFacts) -> Result<ServiceFacts, String> {
                Ok(ServiceFacts {
                    id: facts.id,
                    name: facts.name,
                    image: facts.image,
                    labels: facts.labels,
                    stop_signal: facts.stop_signal.as_deref().map(signal).transpose()?,
                    stop_timeout: facts.stop_timeout_ms.map(Duration::from_millis),
                    command: facts.command,
                    init: facts.init,
                    restart_policy: facts.restart_policy,
                    health: facts.health.map(from_wit_health),
                    compose: facts.compose.map(|compose| ComposeInfo {
                        project: compose.project,
                        service: compose.service,
                        depends_on: compose.depends_on,
                    }),
                    started_at: facts.started_at,
                })
            }

            fn to_wit_condition(condition: &WaitCondition) -> wit::WaitCondition {
                match condition {
                    WaitCondition::Exited => wit::WaitCondition::Exited,
                    WaitCondition::Probe(argv) => wit::WaitCondition::Probe(argv.clone()),
                    WaitCondition::Health(health) => wit::WaitCondition::Health(to_wit_health(*health)),
                    WaitCondition::LogLine(text) => wit::WaitCondition::LogLine(text.clone()),
                    WaitCondition::Elapsed => wit::WaitCondition::Elapsed,
                }
            }

            fn from_wit_condition(condition: wit::WaitCondition) -> WaitCondition {
                match condition {
                    wit::WaitCondition::Exited => WaitCondition::Exited,
                    wit::WaitCondition::Probe(argv) => WaitCondition::Probe(argv),
                    wit::WaitCondition::Health(health) => WaitCondition::Health(from_wit_health(health)),
                    wit::WaitCondition::LogLine(text) => WaitCondition::LogLine(text),
                    wit::WaitCondition::Elapsed => WaitCondition::Elapsed,
                }
            }

            pub fn to_wit_step(step: &Step) -> wit::Step {
                match step {
                    Step::Signal(sig) => wit::Step::Signal(sig.name()),
                    Step::Exec { argv, timeout } => wit::Step::Exec(wit::ExecStep {
                        argv: argv.clone(),
                        timeout_ms: millis(*timeout),
                    }),
                    Step::Http { method, url, body, timeout } => wit::Step::Http(wit::HttpStep {
                        method: method.clone(),
                        url: url.clone(),
                        body: body.clone(),
                        timeout_ms: millis(*timeout),
                    }),
                    Step::Wait { until, timeout } => wit::Step::Wait(wit::WaitStep {
                        until: to_wit_condition(until),
                        timeout_ms: millis(*timeout),
                    }),
                    Step::Kill => wit::Step::Kill,
                    Step::Finish => wit::Step::Finish,
                }
            }

            pub fn from_wit_step(step: wit::Step) -> Result<Step, String> {
                Ok(match step {
                    wit::Step::Signal(name) => Step::Signal(signal(&name)?),
                    wit::Step::Exec(exec) => Step::Exec {
                        argv: exec.argv,
                        timeout: Duration::from_millis(exec.timeout_ms),
                    },
                    wit::Step::Http(http) => Step::Http {
                        method: http.method,
                        url: http.url,
                        body: http.body,
                        timeout: Duration::from_millis(http.timeout_ms),
                    },
                    wit::Step::Wait(wait) => Step::Wait {
                        until: from_wit_condition(wait.until),
                        timeout: Duration::from_millis(wait.timeout_ms),
                    },
                    wit::Step::Kill => Step::Kill,
                    wit::Step::Finish => Step::Finish,
                })
            }

            fn to_wit_outcome(outcome: &Outcome) -> wit::Outcome {
                match outcome {
                    Outcome::SignalDelivered => wit::Outcome::SignalDelivered,
                    Outcome::ExecCompleted { exit_code, output_tail } => {
                        wit::Outcome::ExecCompleted(wit::ExecOutput {
                            exit_code: *exit_code,
                            output_tail: output_tail.clone(),
                        })
                    }
                    Outcome::HttpCompleted { status, body_tail } => {
                        wit::Outcome::HttpCompleted(wit::HttpResponse {
                            status: *status,
                            body_tail: body_tail.clone(),
                        })
                    }
                    Outcome::ConditionMet => wit::Outcome::ConditionMet,
                    Outcome::TimedOut => wit::Outcome::TimedOut,
                    Outcome::Killed => wit::Outcome::Killed,
                    Outcome::ContainerStopped => wit::Outcome::ContainerStopped,
                    Outcome::Failed(reason) => wit::Outcome::Failed(reason.clone()),
                }
            }

            fn from_wit_outcome(outcome: wit::Outcome) -> Outcome {
                match outcome {
                    wit::Outcome::SignalDelivered => Outcome::SignalDelivered,
                    wit::Outcome::ExecCompleted(output) => Outcome::ExecCompleted {
                        exit_code: output.exit_code,
                        output_tail: output.output_tail,
                    },
                    wit::Outcome::HttpCompleted(response) => Outcome::HttpCompleted {
                        status: response.status,
                        body_tail: response.body_tail,
                    },
                    wit::Outcome::ConditionMet => Outcome::ConditionMet,
                    wit::Outcome::TimedOut => Outcome::TimedOut,
                    wit::Outcome::Killed => Outcome::Killed,
                    wit::Outcome::ContainerStopped => Outcome::ContainerStopped,
                    wit::Outcome::Failed(reason) => Outcome::Failed(reason),
                }
            }

            pub fn to_wit_context(context: &Context) -> wit::Context {
                wit::Context {
                    service: to_wit_service(&context.service),
                    settings: context.settings.clone(),
                    history: context
                        .history
                        .iter()
                        .map(|record| wit::StepRecord {
                            step: to_wit_step(&record.step),
                            outcome: to_wit_outcome(&record.outcome),
                            started_ms: millis(record.started),
                            ended_ms: millis(record.ended),
                        })
                        .collect(),
                    state: wit::ContainerState {
                        running: context.state.running,
                        exit_code: context.state.exit_code,
                        health: context.state.health.map(to_wit_health),
                    },
                    elapsed_ms: millis(context.elapsed),
                    remaining_ms: millis(context.remaining),
                }
            }

            pub fn from_wit_context(context: wit::Context) -> Result<Context, String> {
                let history = context
                    .history
                    .into_iter()
                    .map(|record| {
                        Ok(StepRecord {
                            step: from_wit_step(record.step)?,
                            outcome: from_wit_outcome(record.outcome),
                            started: Duration::from_millis(record.started_ms),
                            ended: Duration::from_millis(record.ended_ms),
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(Context {
                    service: from_wit_service(context.service)?,
                    settings: context.settings,
                    history,
                    state: ContainerState {
                        running: context.state.running,
                        exit_code: context.state.exit_code,
                        health: context.state.health.map(from_wit_health),
                    },
                    elapsed: Duration::from_millis(context.elapsed_ms),
                    remaining: Duration::from_millis(context.remaining_ms),
                })
            }

            pub fn to_wit_info(info: &PolicyInfo) -> wit::PolicyInfo {
                wit::PolicyInfo {
                    name: info.name.clone(),
                    version: info.version.clone(),
                    description: info.description.clone(),
                    contract_version: info.contract_version.clone(),
                    images: info.images.clone(),
                    settings_doc: info.settings_doc.clone(),
                }
            }

            pub fn from_wit_info(info: wit::PolicyInfo) -> PolicyInfo {
                PolicyInfo {
                    name: info.name,
                    version: info.version,
                    description: info.description,
                    contract_version: info.contract_version,
                    images: info.images,
                    settings_doc: info.settings_doc,
                }
            }
        }
    };
}
