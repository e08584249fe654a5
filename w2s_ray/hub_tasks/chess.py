"""Chess puzzles as the paper frames them: given a position, name the best move — a
generative task scored by exact match, not a binary one (Burns et al. 2023, section 4.1).

Source: the Lichess puzzle database on the hub (Lichess/chess-puzzles, CC0). Each row holds a
position (FEN) and the puzzle's moves in UCI notation; the first move is the opponent's,
played into the position, and the answer is the reply that starts the solution. The prompt
shows the position and that move, so no chess engine is needed to read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict
from urllib.parse import urlparse

from w2s_ray.hub_tasks.common import group_key

HF_PATH = "Lichess/chess-puzzles"
# The database holds millions of puzzles; a study caps its pool and test set far below this.
HUB_SPLIT = "train[:200000]"


class AnswerExample(TypedDict):
    text: str  # the prompt
    answer: str  # the target continuation, with its leading space
    group: str


def puzzle_prompt(fen: str, opponent_move: str) -> str:
    return f"Chess puzzle.\nPosition (FEN): {fen}\nOpponent plays: {opponent_move}\nBest reply:"


def convert_chess(rows: Iterable[Mapping[str, Any]], seed: int = 0) -> list[AnswerExample]:
    """One example per puzzle with at least a move to answer; puzzles from one game share a
    group, so a game never straddles train and test."""
    del seed  # nothing is drawn: each puzzle has one answer
    examples: list[AnswerExample] = []
    for row in rows:
        moves = str(row.get("Moves") or "").split()
        fen = str(row.get("FEN") or "").strip()
        if len(moves) < 2 or not fen:
            continue
        examples.append(
            {
                "text": puzzle_prompt(fen, moves[0]),
                "answer": f" {moves[1]}",
                "group": group_key("chess", _game(row) or fen),
            }
        )
    return examples


def _game(row: Mapping[str, Any]) -> str:
    """The game a puzzle comes from: its id in GameUrl (https://lichess.org/ID[/black][#ply])."""
    url = str(row.get("GameUrl") or "")
    if url:
        return urlparse(url).path.strip("/").split("/")[0]
    return str(row.get("GameId") or row.get("PuzzleId") or "")
