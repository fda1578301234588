"""Synthetic populations: user *i* derives from (seed, i); nothing exists until it is used."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

from . import _core


@dataclass(frozen=True)
class User:
    index: int
    login: str
    address: str
    password: str
    name: str


class Population:
    """A population of ``size`` synthetic users derived from ``seed``.

    ``population[i]`` gives user *i* (``login`` is ``user<i>``, imaptest's ``user%d`` form).
    ``password`` sets one shared password (for tools that take one); otherwise each user's
    password derives from the seed. Indexing costs microseconds and holds no memory.
    """

    def __init__(self, seed: int, size: int, password: Optional[str] = None,
                 domain: str = "localhost"):
        if size < 0:
            raise ValueError("size must be >= 0")
        if seed < 0:
            raise ValueError("seed must be >= 0")
        self._core = _core.Population(seed, size, password, domain)
        self.seed = seed
        self.size = size
        self.password = password
        self.domain = domain

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> User:
        if not isinstance(index, int):
            raise TypeError("population indices are integers")
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(f"user {index} is outside a population of {self.size}")
        return User(**self._core.user(index))

    def __iter__(self) -> Iterator[User]:
        for i in range(self.size):
            yield self[i]

    def __repr__(self) -> str:
        return f"Population(seed={self.seed}, size={self.size}, domain={self.domain!r})"
