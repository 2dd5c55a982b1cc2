"""The job side of IPyParallel on BatchHub: ``python -m kernel_ext.ipp controller|wait-controller``.

``controller`` runs ``ipcontroller`` writing its connection files atomically,
tagged with the job id and the launcher's instance token; ``wait-controller``
is the engines' job waiting for *its* controller's file and checking the
controller answers before the engines start.
"""

import argparse
import os
import sys
import time

from traitlets import Unicode

from .ipp_connection import (LauncherError, check_reachable, connection_file_name, controller_bind_address,
                             wait_for_connection_file, write_json_atomic)



# --------------------------------------------------------------------------
# the job side: python -m kernel_ext.ipp controller|wait-controller
# --------------------------------------------------------------------------

def _controller_app_class():
    """IPController writing its connection files atomically, tagged with job id and instance."""
    from ipyparallel.controller.app import IPController

    class BatchHubIPController(IPController):
        connection_dir = Unicode("", config=True)
        job_id = Unicode("", config=True)
        batchhub_instance = Unicode("", config=True)  # not "instance": Application.instance() exists

        def init_hub(self):
            self.client_json_file = connection_file_name(self.cluster_id, self.job_id, "client")
            self.engine_json_file = connection_file_name(self.cluster_id, self.job_id, "engine")
            super().init_hub()

        def save_connection_dict(self, fname, cdict):
            path = os.path.join(self.connection_dir, fname)
            cdict = dict(cdict, batchhub={"job_id": self.job_id, "instance": self.batchhub_instance,
                                          "node": os.environ.get("SLURMD_NODENAME", ""),
                                          "written": time.time()})
            self.log.info("writing connection info to %s", path)
            write_json_atomic(path, cdict)

        def cleanup_connection_files(self):
            for fname in (self.client_json_file, self.engine_json_file):
                try:
                    os.remove(os.path.join(self.connection_dir, fname))
                except OSError:
                    pass

    return BatchHubIPController


def run_controller(argv):
    """``controller --connection-dir D --instance I [--ip IP] -- <ipcontroller args>``."""
    p = argparse.ArgumentParser(prog="python -m kernel_ext.ipp controller")
    p.add_argument("--connection-dir", required=True)
    p.add_argument("--instance", default="")
    p.add_argument("--ip", default="")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    opts = p.parse_args(argv)
    rest = [a for a in opts.rest if a != "--"]
    job_id = os.environ.get("SLURM_JOB_ID", "")
    args = list(rest)
    if not any(a.startswith(("--ip=", "--IPController.ip=")) or a in ("--ip", "--IPController.ip") for a in rest):
        if opts.ip:
            args.append(f"--ip={opts.ip}")
        else:
            ip, location = controller_bind_address()
            args.append(f"--ip={ip}")
            if not any(a.startswith("--location") for a in rest):
                args.append(f"--location={location}")
    args += [f"--BatchHubIPController.connection_dir={opts.connection_dir}",
             f"--BatchHubIPController.job_id={job_id}",
             f"--BatchHubIPController.batchhub_instance={opts.instance}"]
    print(f"kernel_ext.ipp: starting ipcontroller for job {job_id}: {' '.join(args)}", flush=True)
    _controller_app_class().launch_instance(args)


def run_wait_controller(argv):
    """``wait-controller --file F --job-id N [--instance I] [--timeout S]``: exit 0 once usable."""
    p = argparse.ArgumentParser(prog="python -m kernel_ext.ipp wait-controller")
    p.add_argument("--file", required=True)
    p.add_argument("--job-id", required=True)
    p.add_argument("--instance", default="")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--reach-timeout", type=float, default=10.0)
    opts = p.parse_args(argv)
    try:
        info = wait_for_connection_file(opts.file, opts.job_id, opts.instance or None, opts.timeout)
        host, port = check_reachable(info, opts.reach_timeout)
    except LauncherError as e:
        print(f"ipengine: error: {e}", file=sys.stderr, flush=True)
        return 1
    print(f"ipengine: controller job {opts.job_id} answers at tcp://{host}:{port}", flush=True)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    commands = {"controller": run_controller, "wait-controller": run_wait_controller}
    if not argv or argv[0] not in commands:
        print("usage: python -m kernel_ext.ipp {controller|wait-controller} ...", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
