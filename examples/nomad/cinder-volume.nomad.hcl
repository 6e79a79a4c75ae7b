# cinder-volume under `quiesce run` in a Nomad job. Nomad sends kill_signal to the task's
# PID 1 (quiesce) and SIGKILLs after kill_timeout; quiesce ends its sequence before that.
# Nomad clients cap kill_timeout at their max_kill_timeout (30 s by default): raise it in the
# client configuration for long drains.
job "cinder-volume" {
  group "volume" {
    task "cinder-volume" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = "900s"

      config {
        image      = "registry.example/openstack/cinder-volume-quiesce:2025.1"
        entrypoint = ["/usr/local/bin/quiesce", "run", "--"]
        args       = ["cinder-volume", "--config-file", "/etc/cinder/cinder.conf"]
      }

      env {
        QUIESCE_GRACE_PERIOD = "900s"
        QUIESCE_POLICY       = "cinder-volume"
        QUIESCE_SETTINGS     = "{\"inflight_command\": [\"/usr/local/bin/cinder-inflight\"], \"max_drain\": \"13m\"}"
      }
    }
  }
}
