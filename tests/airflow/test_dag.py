"""A DAG end to end with ``dag.test()``: a deferrable FerrymanFileSensor on OpenSSH, a
FerrymanTransferOperator from sshd to vsftpd (explicit FTPS, session reuse required), and a
FerrymanJobOperator whose job takes the files from vsftpd into a local directory with its
only-new ledger. Airflow runs in a child process (as a worker would) with the standalone SQLite
metadata database; everything it prints and every file it writes is searched for the password.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.airflow.test_provider import ftpes_uri, sftp_uri
from tests.servers.sshd import Sshd
from tests.servers.vsftpd import TEST_PASSWORD, Vsftpd, Workdir

DAG = """
import datetime, json, sys
from airflow.sdk import DAG
from ferryman.airflow.operators.ferryman import FerrymanJobOperator, FerrymanTransferOperator
from ferryman.airflow.sensors.ferryman import FerrymanFileSensor

with DAG("ferryman_e2e", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
    wait = FerrymanFileSensor(
        task_id="wait",
        ferryman_conn_id="bank",
        path="{outbound}/*.csv",
        min_count=2,
        stable_for=1.0,
        poke_interval=0.3,
        timeout=120,
        deferrable=True,
    )
    move = FerrymanTransferOperator(
        task_id="move",
        source_conn_id="bank",
        source="{outbound}/*.csv",
        destination_conn_id="partner",
        destination="{inbox}/",
        after="move",
        move_to="{outbound}/archive/",
        parallel=2,
    )
    job = FerrymanJobOperator(
        task_id="job",
        job_file="{job_file}",
        variables={{"day": "{{{{ ds_nodash }}}}"}},
        state_file="{state_file}",
    )
    wait >> move >> job

if __name__ == "__main__":
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    run = dag.test()
    with create_session() as session:
        states = {{ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}}
        rows = session.query(XComModel).filter_by(dag_id=dag.dag_id, run_id=run.run_id).all()
        xcoms = {{r.task_id: XComModel.deserialize_value(r) for r in rows}}
    print("RESULT " + json.dumps({{"state": str(run.state), "tasks": states, "xcom": xcoms}}))
"""

JOB = """\
name: airflow-e2e
connections:
  partner:
    url: ftpes://{user}@{host}:{port}/
    password_env: FERRYMAN_E2E_PASSWORD
    ca_file: {ca_file}
variables:
  day: "00000000"
steps:
  - name: fetch
    receive:
      from: "partner:{inbox}/*.csv"
      to: "{local}/{{{{ day }}}}/"
      only_new: true
"""


def test_sensor_transfer_job_dag_runs_end_to_end(
    airflow_home: Path,
    sshd: Sshd,
    vsftpd_explicit: Vsftpd,
    vsftpd_workdir: Workdir,
    tmp_path: Path,
) -> None:
    outbound = sshd.workdir("outbound")
    outbound.write("orders_1.csv", b"id\n1\n")
    outbound.write("orders_2.csv", b"id\n2\n")
    outbound.write("notes.txt", b"not a csv\n")
    assert vsftpd_explicit.pki is not None
    job_file = tmp_path / "job.yaml"
    job_file.write_text(
        JOB.format(
            user=vsftpd_explicit.user,
            host=vsftpd_explicit.host,
            port=vsftpd_explicit.port,
            ca_file=vsftpd_explicit.pki.ca_cert,
            inbox=vsftpd_workdir.ftp_path(),
            local=tmp_path / "local",
        )
    )
    state_file = tmp_path / "state" / "ferryman.db"
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file = dags / "ferryman_e2e.py"
    dag_file.write_text(
        DAG.format(
            outbound=outbound.path,
            inbox=vsftpd_workdir.ftp_path(),
            job_file=job_file,
            state_file=state_file,
        )
    )
    env = {
        **os.environ,
        "AIRFLOW_CONN_BANK": sftp_uri(sshd),
        "AIRFLOW_CONN_PARTNER": ftpes_uri(vsftpd_explicit),
        "FERRYMAN_E2E_PASSWORD": TEST_PASSWORD,
        # the most Airflow and ferryman would ever write, transcripts included
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
    }
    child = subprocess.run(
        [sys.executable, str(dag_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
        check=False,
    )
    output = child.stdout + child.stderr
    lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
    assert child.returncode == 0 and lines, output[-6000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["state"] == "success", output[-6000:]
    assert result["tasks"] == {"wait": "success", "move": "success", "job": "success"}

    # the sensor's XCom: the two stable CSV files, not the .txt
    waited = result["xcom"]["wait"]
    assert sorted(Path(f["path"]).name for f in waited) == ["orders_1.csv", "orders_2.csv"]
    # the transfer's JSON summary; the sources were moved to the archive once verified
    moved = result["xcom"]["move"]
    assert moved["counts"]["copied"] == 2, moved
    assert sorted(p.name for p in (outbound.local / "archive").iterdir()) == [
        "orders_1.csv",
        "orders_2.csv",
    ]
    assert not (outbound.local / "orders_1.csv").exists()
    assert (vsftpd_workdir.local / "orders_2.csv").read_bytes() == b"id\n2\n"
    # the job ran with the templated variable, and recorded its run in ferryman's state file
    summary = result["xcom"]["job"]
    assert summary["status"] == "succeeded" and summary["exit_code"] == 0
    day_dirs = list((tmp_path / "local").iterdir())
    assert len(day_dirs) == 1 and day_dirs[0].name != "00000000"
    assert sorted(p.name for p in day_dirs[0].iterdir()) == ["orders_1.csv", "orders_2.csv"]
    history = subprocess.run(
        [sys.executable, "-m", "ferryman", "history", "--state", str(state_file), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert '"airflow-e2e"' in history.stdout and '"succeeded"' in history.stdout

    # the password: in none of what the run printed, nor in any file it wrote
    assert "[ferryman.wire]" in output  # ferryman's transcripts are in what is searched
    leaks = [line for line in output.splitlines() if TEST_PASSWORD in line]
    # Except Airflow's own DEBUG line of the request its task runner sends to its supervisor
    # to mask the connection's password ("Sending request ... MaskSecret(value=...)"): that
    # is Airflow's, written only at DEBUG, and never in a task's log.
    assert all(_airflow_mask_request(line) for line in leaks), leaks
    written = [p for p in airflow_home.rglob("*") if p.is_file() and p.suffix != ".db"]
    written += [p for p in state_file.parent.rglob("*") if p.is_file()]
    for path in written:
        assert TEST_PASSWORD.encode() not in path.read_bytes(), path


def _airflow_mask_request(line: str) -> bool:
    return "Sending request" in line and "supervisor.py" in line and "MaskSecret(value=" in line


def test_a_failed_job_fails_the_task_with_ferrymans_error(
    airflow_home: Path, tmp_path: Path
) -> None:
    # a port bound but not listening: connections to it are refused at once
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    job_file = tmp_path / "broken.yaml"
    job_file.write_text(
        textwrap.dedent(
            f"""\
            name: broken
            connections:
              nowhere:
                url: ftp://127.0.0.1:{port}/
                retries: 0
            steps:
              - name: fetch
                receive:
                  from: "nowhere:/outbound/*.csv"
                  to: "{tmp_path}/out/"
            """
        )
    )
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file = dags / "ferryman_broken.py"
    dag_file.write_text(
        textwrap.dedent(
            f"""\
            import datetime
            from airflow.sdk import DAG
            from ferryman.airflow.operators.ferryman import FerrymanJobOperator

            start = datetime.datetime(2026, 1, 1)
            with DAG("ferryman_broken", schedule=None, start_date=start) as dag:
                FerrymanJobOperator(task_id="job", job_file="{job_file}",
                                    state_file="{tmp_path}/state.db")

            if __name__ == "__main__":
                print("RESULT", dag.test().state)
            """
        )
    )
    with closed:
        child = subprocess.run(
            [sys.executable, str(dag_file)],
            capture_output=True,
            text=True,
            env={**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)},
            timeout=240,
            check=False,
        )
    output = child.stdout + child.stderr
    assert "RESULT failed" in output, output[-4000:]
    assert "FerrymanJobError" in output
    assert "ferryman job 'broken' run 1 failed (exit code 3, connection)" in output, output[-4000:]
