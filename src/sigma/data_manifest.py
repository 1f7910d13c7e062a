"""What `sigma data fetch` can download: the official Alibaba cluster-trace files and the
slices the repository ships, with where each comes from and how it is checked.

Official files (alibaba/clusterdata):
- v2018: the six tables as separate tar.gz, URLs from cluster-trace-v2018/fetchData.sh
  (aliopentrace.oss-cn-beijing) and the README's two mirrors (clusterdata2018pubus,
  clusterdata2018pubcn); sha256 as the README publishes them ("$sha256sum *"); sizes only as
  the README's `ls -sh` rounded them (the exact size is the server's Content-Length). The
  README's single-archive download is left out: its link (alibaba_clusterdata2018.tar.gz)
  and its checksum line (alibaba_clusterdata_v2018.tar.gz) name different files, and the six
  tables are the same data.
- v2017: one archive, from cluster-trace-v2017/README2017.md. The published SHA256SUM is
  for `trace_201708.tgz`, not the `alibaba-trace-2017.tar.gz` that link serves, so nothing
  published can check it: the first complete download's sha256 is recorded beside it
  (`NAME.sha256`) and every later run verifies the file against that record.

Slices: byte copies of public GitHub blobs (data/alibaba/SOURCES.md), fetched from
raw.githubusercontent.com at the recorded commit; their sha256 is of the repository's copies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class DataFile:
    name: str  # NAME for this file alone
    group: str  # NAME of its set: v2017, v2018 or slices
    dest: str  # path under <data dir>/alibaba
    urls: tuple[str, ...]  # tried in order
    sha256: str | None  # published (slices: of the repository's copies); None: recorded on first download
    size: int | None = None  # exact bytes, when known
    size_published: str | None = None  # as the README's `ls -sh` printed it
    archive: bool = False  # a tar.gz that --extract unpacks beside itself

    @property
    def filename(self) -> str:
        return PurePosixPath(self.dest).name

    @property
    def max_bytes(self) -> int | None:
        """The most a download of this file may be: its exact size, else the published
        `ls -sh` size (rounded up there, so a file is never larger) with 5% to spare; None
        when neither is known. A server sending more is refused, not written to disk."""
        if self.size is not None:
            return self.size
        if not self.size_published:
            return None
        number, unit = self.size_published[:-1], self.size_published[-1].upper()
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(unit)
        if scale is None:
            return None
        return math.ceil(float(number) * scale * 1.05)


_V2018_HOSTS = ("http://aliopentrace.oss-cn-beijing.aliyuncs.com/v2018Traces",
                "http://clusterdata2018pubus.oss-us-west-1.aliyuncs.com",
                "http://clusterdata2018pubcn.oss-cn-beijing.aliyuncs.com")
# table -> (sha256, size) as cluster-trace-v2018/README.md publishes them.
_V2018 = {
    "machine_meta": ("b5b1b786b22cd413a3674b8f2ebfb2f02fac991c95df537f363ef2797c8f6d55", "92K"),
    "machine_usage": ("3e6ee87fd204bb85b9e234c5c75a5096580fdabc8f085b224033080090753a7a", "1.7G"),
    "container_meta": ("febd75e693d1f208a8941395e7faa7e466e50d21c256eff12a815b7e2fa2053f", "2.4M"),
    "container_usage": ("b4bd3b1b82f5407c1b0dd47fe736ff5152c4b016a9c30cb26f988e2d1c5e5031", "28G"),
    "batch_task": ("7c4b32361bd1ec2083647a8f52a6854a03bc125ca5c202652316c499fbf978c6", "125M"),
    "batch_instance": ("e73e5a9326669aa079ba20048ddd759383cabe1fe3e58620aa75bd034e2450c6", "20G"),
}
V2018_TABLES = tuple(_V2018)

OFFICIAL = (
    DataFile("v2017", "v2017", "v2017/full/alibaba-trace-2017.tar.gz",
             ("http://aliopentrace.oss-cn-beijing.aliyuncs.com/v2017Traces/alibaba-trace-2017.tar.gz",),
             None, archive=True),
    *(DataFile(f"v2018-{table}", "v2018", f"v2018/full/{table}.tar.gz",
               tuple(f"{host}/{table}.tar.gz" for host in _V2018_HOSTS), sha, size_published=size, archive=True)
      for table, (sha, size) in _V2018.items()),
)

# source -> (GitHub repository, commit, folder there, trailing parts of the path kept)
_SOURCES = {
    "workload-prediction": ("PriyadarshiniDas/Workload-Prediction-of-Alibaba-Cluster-Dataset",
                            "53aa3e8cdc6017036590947b959e0cc4f6694f8f", "", 1),
    "alibaba-trace": ("Prasanna2002/Alibaba_trace", "1b1d720cdddfc8571bd76c321a0f31af8815255a",
                      "", 1),
    "cloudsimpy": ("RobertLexis/CloudSimPy", "c103672f51d6617707501f05548a7df6090cdca5",
                   "playground/Non_DAG/jobs_files/", 1),
    "cluster-optimization": ("gohsyi/cluster_optimization", "a2c5547d7ee72a3734a9b174bf3d32918b61b46d",
                             "data/", 1),
    "pivot": ("heliumdatacommons/pivot-scheduling", "dfdfc1063249bdb5a1d2b338b7ac7f46479f376e",
              "alibaba/jobs/", 1),
    "datacenter-traces": ("alejandrofdez-us/DataCenter-Traces-Datasets", "003bb8e7ce9aaf4ed16ddf1652bc1a279c8ac2e6",
                          "alibaba2018/", 2),
}
# (path under alibaba/, source, bytes, sha256)
_SLICES = (
    ("v2017/batch_task.csv", "workload-prediction",
     4064258, "7586e51ef58390b41d67de4263018296d4b0437b414625f97085f9040c727cce"),
    ("v2017/server_event.csv", "alibaba-trace",
     47615, "336f7255add3ae3c08bf5163b15319f542365a3c7814ed3f712699560933968b"),
    ("v2017/derived/cloudsimpy/jobs.csv", "cloudsimpy",
     1921566, "b422d8aa185fe5025b139d6843d6d49b91fab486c487df4d606aa52fffba4a2b"),
    ("v2018/machine_meta.csv", "cluster-optimization",
     552566, "3ccd30a264d32ccc4f2a58dfc23a9055db8992a40dac63d80f49f0a41daaf31d"),
    ("v2018/machine_usage.csv", "cluster-optimization",
     3678924, "a51d7fcc009e11bbdbc1060c4ae3ed176447fd369be4ec404f4d36d08c64f775"),
    ("v2018/derived/pivot_dag_jobs/jobs-5000-200-172800-259200.yaml", "pivot",
     3029820, "c7eaebae82733928158655811b5f56a7766a962acef6dbaa76819adf48394bf6"),
    ("v2018/derived/pivot_dag_jobs/jobs-5000-200-259200-345600.yaml", "pivot",
     3245193, "4bf48313308c45fb8ca4e915fb3f864d5c9af5d762e089b935a5fd06432d2a53"),
    ("v2018/derived/pivot_dag_jobs/jobs-5000-200-345600-432000.yaml", "pivot",
     3090367, "467046d6557cbc1247e68b5a137ef416d67da6947ab979f44e19a2c7b8e378b7"),
    ("v2018/derived/pivot_dag_jobs/jobs-5000-200-432000-518400.yaml", "pivot",
     3139802, "0dd17e188a6fe96bc6716051aab7501c2df359bd21d4239f868ae33c218918fc"),
    ("v2018/derived/pivot_dag_jobs/jobs-5000-200-518400-604800.yaml", "pivot",
     2857143, "c03fc19ae9e41e196c060952340d15c7c6b988180c64ea183a26f07556a69673"),
    ("v2018/derived/pivot_dag_jobs/jobs-5000-200-86400-172800.yaml", "pivot",
     3025737, "401b87a35810e7314b03f29e9774d025b4780dea00ede50668e146882785f6b1"),
    ("v2018/derived/cluster_avg_machine_usage/day_1/machine_usage_day_1_grouped_10_seconds.csv", "datacenter-traces",
     785218, "b74bb3816643c7244baf457142ad5be1abb9062337be68b9e3320fea5fabc4a6"),
    ("v2018/derived/cluster_avg_machine_usage/day_1/machine_usage_day_1_grouped_300_seconds.csv", "datacenter-traces",
     26403, "dddae60849af467bbc22e1f482469be05bcbde2951a935dca65ada07af6d85f5"),
    ("v2018/derived/cluster_avg_machine_usage/day_1/machine_usage_day_1_grouped_30_seconds.csv", "datacenter-traces",
     262070, "81494c4a54fc6a07fd8fbf1f43b2c300d8e4010818834c0cad3069c0518891eb"),
    ("v2018/derived/cluster_avg_machine_usage/day_2/machine_usage_day_2_grouped_10_seconds.csv", "datacenter-traces",
     612828, "98592388c787ee5968098d0474f015b62a6a9ba8c7cb09e3a973e9ad4ea827de"),
    ("v2018/derived/cluster_avg_machine_usage/day_2/machine_usage_day_2_grouped_300_seconds.csv", "datacenter-traces",
     20484, "a0851246486afaadf53fee84d969ceed9242d1645ccc1c450c0dc2b37a30b303"),
    ("v2018/derived/cluster_avg_machine_usage/day_2/machine_usage_day_2_grouped_30_seconds.csv", "datacenter-traces",
     204328, "666b907be0e3535b79d2633236173f19e87f971fc8ad597c0173eecb1de5aedc"),
    ("v2018/derived/cluster_avg_machine_usage/day_3/machine_usage_day_3_grouped_10_seconds.csv", "datacenter-traces",
     781456, "1cda9b858679089d48477a574836adc710667f2de28f8ef6e4f6ba49388fc95b"),
    ("v2018/derived/cluster_avg_machine_usage/day_3/machine_usage_day_3_grouped_300_seconds.csv", "datacenter-traces",
     26242, "1a1b55d3ddb13731ac6bc307514aee931d20ea5c1f2a6d76aea9d7de1a761057"),
    ("v2018/derived/cluster_avg_machine_usage/day_3/machine_usage_day_3_grouped_30_seconds.csv", "datacenter-traces",
     260464, "77769f0d766446fc7d2127a8ffe7288f8e353a49071ef8c623773b81cd877c4f"),
    ("v2018/derived/cluster_avg_machine_usage/day_4/machine_usage_day_4_grouped_10_seconds.csv", "datacenter-traces",
     782458, "1f809b614c1009e4532cecb7f3a3c7e27995e599c308666b88a6af7cad27bb47"),
    ("v2018/derived/cluster_avg_machine_usage/day_4/machine_usage_day_4_grouped_300_seconds.csv", "datacenter-traces",
     26120, "ea5fb92c1497a56b108e2eb86fec707449eca04003fe1fa38003acd4844419de"),
    ("v2018/derived/cluster_avg_machine_usage/day_4/machine_usage_day_4_grouped_30_seconds.csv", "datacenter-traces",
     261008, "2d853c33aad0777865469ea5046a96069f30b70cb6cb0ddcba227efb8ea50c87"),
    ("v2018/derived/cluster_avg_machine_usage/day_5/machine_usage_day_5_grouped_10_seconds.csv", "datacenter-traces",
     780422, "202e5a85efccaf85ce1cec8a03efae7c80e988917317f4f15035dc4f1b61741c"),
    ("v2018/derived/cluster_avg_machine_usage/day_5/machine_usage_day_5_grouped_300_seconds.csv", "datacenter-traces",
     26002, "61c7178e527cb0eb9f9e9bbcfb84aa245013b0a6f6c7de20ba64c4de9fb829fa"),
    ("v2018/derived/cluster_avg_machine_usage/day_5/machine_usage_day_5_grouped_30_seconds.csv", "datacenter-traces",
     260039, "e2155f281202a0b17e160291e47e7edb589c58ab585e502029634fe2bab51024"),
    ("v2018/derived/cluster_avg_machine_usage/day_6/machine_usage_day_6_grouped_10_seconds.csv", "datacenter-traces",
     779851, "ee2043be9caa28e4d69247fbf4f7afcc621e68855b36adc2df975728f6030390"),
    ("v2018/derived/cluster_avg_machine_usage/day_6/machine_usage_day_6_grouped_300_seconds.csv", "datacenter-traces",
     26134, "89bf14e0fae1811d197dacfba4bae5ddca60ec93e445a4ddbc22687b6a8efa68"),
    ("v2018/derived/cluster_avg_machine_usage/day_6/machine_usage_day_6_grouped_30_seconds.csv", "datacenter-traces",
     259795, "7d4107321450acba8001e76d1d9ef0a1520ff8c05a73f81220b838f142b3eba6"),
    ("v2018/derived/cluster_avg_machine_usage/day_7/machine_usage_day_7_grouped_10_seconds.csv", "datacenter-traces",
     780262, "12572c5edc1e76025e40f38595fa965f2b4cf4aa71671fd9ffb0912dbaddc966"),
    ("v2018/derived/cluster_avg_machine_usage/day_7/machine_usage_day_7_grouped_300_seconds.csv", "datacenter-traces",
     26024, "21237842b38a41cb5ed9e3026a5ca3a926ce39fcd1a6a9bbe74df2a4a8e7e85b"),
    ("v2018/derived/cluster_avg_machine_usage/day_7/machine_usage_day_7_grouped_30_seconds.csv", "datacenter-traces",
     260008, "f11308d093b74b5ab0acc2d2ea01a81bf8d9c502bd3a6d5267234cde8fc856ca"),
)


def _raw_url(dest: str, source: str) -> str:
    repo, commit, folder, kept = _SOURCES[source]
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{folder}{'/'.join(dest.split('/')[-kept:])}"


SLICES = tuple(DataFile(dest, "slices", dest, (_raw_url(dest, source),), sha, size)
               for dest, source, size, sha in _SLICES)

FILES = OFFICIAL + SLICES
GROUPS = ("v2017", "v2018", "slices")


def resolve(names: list[str]) -> list[DataFile]:
    """The files the NAMEs stand for (a set's name, a file's name, a slice's path), in
    manifest order, each once; no NAME: everything. ValueError naming an unknown one."""
    if not names:
        return list(FILES)
    wanted = set()
    for name in names:
        matched = [f for f in FILES if name in (f.name, f.group)]
        if not matched:
            raise ValueError(f"unknown data set {name!r}; known: {', '.join(known_names())}")
        wanted.update(matched)
    return [f for f in FILES if f in wanted]


def known_names() -> list[str]:
    return [*GROUPS, *(f.name for f in OFFICIAL if f.name not in GROUPS), "(or a slice's path, see `sigma data list`)"]


def fetch_name(path: str) -> str | None:
    """The NAME that fetches a file a loader looked for, from its path: a shipped slice,
    an official table (v2017 when the path says so, else v2018), or None."""
    p = PurePosixPath(path)
    for f in SLICES:
        if p.parts[-len(PurePosixPath(f.dest).parts):] == PurePosixPath(f.dest).parts:
            return "slices"
    stem = p.name.split(".")[0]
    if "v2017" in p.parts:
        return "v2017"
    if stem in _V2018:
        return f"v2018-{stem}"
    if "cluster_avg_machine_usage" in p.parts or "pivot_dag_jobs" in p.parts:
        return "slices"
    return None
