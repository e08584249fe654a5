"""Phrases grouped with the sentences they were cut from, across the train and test splits.

GLUE SST-2's train split holds every constituent of its sentences' parse trees as a row of
its own ("a gorgeous , witty , seductive movie ." and "witty , seductive movie"), each
labelled. A phrase split away from its sentence puts near-copies of one text on both sides,
so a phrase shares its sentence's group. The rule, on lower-cased, whitespace-split words:

- a root is a text that is no contiguous word span of a longer text (in either split);
  it keeps a group of its own;
- a shorter text found in exactly one root joins that root's group;
- a text found in several roots joins one of them if it has at least MIN_SHARED_WORDS words,
  preferring a test root (so a pool that drops the test set's groups also drops it), then
  the first in alphabetical order (deterministic, whatever order rows come in);
- a shorter one in several roots ("the", "not good") keeps a group of its own: a word or two
  common to many sentences tells about none of them in particular, and tying it to one
  would be arbitrary and, for a test root, would strip generic vocabulary from the pool.
"""

from __future__ import annotations

from w2s_ray.hub_tasks.common import RawExample, Splits, group_key

MIN_SHARED_WORDS = 3


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def group_phrases(task: str, train: list[RawExample], test: list[RawExample]) -> Splits:
    """`train` and `test` with each example's group set by the rule above.

    Every contiguous span of each root is looked up among the texts; with roots of at most
    a few dozen words this is a few million dictionary look-ups for SST-2's 68k rows.
    """
    test_texts = {_normal(ex["text"]) for ex in test}
    rank = {text: 1 for ex in train if (text := _normal(ex["text"])) not in test_texts}
    rank.update(dict.fromkeys(test_texts, 0))  # 0 sorts test roots first
    preference = lambda text: (rank[text], text)  # noqa: E731

    # Longest first: every text that could contain another is settled before it.
    order = sorted(rank, key=lambda text: (-text.count(" "), *preference(text)))
    inside: dict[str, tuple[int, str]] = {}  # text -> (roots holding it, the preferred one)
    for text in order:
        if text in inside:
            continue  # a span of a longer text: not a root
        words = text.split(" ")
        spans = {
            " ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)
        }
        spans.discard(text)
        for span in spans & rank.keys():
            count, best = inside.get(span, (0, text))
            inside[span] = (count + 1, min(best, text, key=preference))

    def group_of(text: str) -> str:
        if text not in inside:
            return text
        count, best = inside[text]
        return best if count == 1 or text.count(" ") + 1 >= MIN_SHARED_WORDS else text

    def regrouped(split: list[RawExample]) -> list[RawExample]:
        return [
            RawExample(
                text=ex["text"],
                label=ex["label"],
                group=group_key(task, group_of(_normal(ex["text"]))),
            )
            for ex in split
        ]

    return regrouped(train), regrouped(test)
