"""The paper's real/fake survey: a package to send (``package``), scoring of the answers (``scoring``), the report
(``report``)."""

from brushwork.evaluation.survey.package import answers_dir, build, encode_uniform, key_path, page, square, write_zip
from brushwork.evaluation.survey.report import bar_chart, write_report
from brushwork.evaluation.survey.scoring import Tally, read_key, read_responses, score, simulate, wilson

__all__ = ["answers_dir", "build", "encode_uniform", "key_path", "page", "square", "write_zip", "bar_chart",
           "write_report", "Tally", "read_key", "read_responses", "score", "simulate", "wilson"]
