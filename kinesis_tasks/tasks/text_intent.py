"""What a text prompt asks for, read by rules: the steps in order, their speed, turn and duration, and the
actions outside a walking repertoire (jumps, flips, dancing, sitting, running, ...).

``parse_prompt("stand still for 5 seconds, then walk in a circle counterclockwise")`` gives two steps:
``Step(action="stand", duration=5.0)`` and ``Step(action="walk", turning=True, turn=+1, circles=1.0)``.

Vocabulary (word forms are matched whole, case-insensitive):

* actions: *walk* (walk, stroll, march, go, move, head, proceed, ...; turning words imply a walk),
  *stand* (stand, stay, wait, remain, pause, freeze, "hold still", "without moving", "don't move", ...),
  *start* ("start/begin walking", "set off", "get going", "from standing still", ...),
  *stop* (stop, halt, "come to a stop", "stop walking"; "without stopping" is a walk);
* pace: slow (slow, slowly, leisurely, gently, casually, stroll, ...), normal ("normal/usual/regular/
  comfortable/moderate/average pace", normally, ...), fast (fast, quickly, briskly, hurry, ...), or an
  explicit speed in m/s, km/h or mph (classified by ``SPEED_CLASSES``);
* turn: +1 left (left, counterclockwise, anticlockwise, ccw), -1 right (right, clockwise, cw), 0 straight
  (straight, forward, ahead); turning words (turn, circle, curve, arc, veer, bend, loop, u-turn) ask for a
  turning walk; "a circle"/"circles" ask for a full turn and "turn around"/"u-turn" for a half turn when no
  duration is given;
* order: steps are split at "then", "after that", "afterwards", "followed by", "finally", "next", ";",
  "X before Y", "X after Y" (Y first), and where the action changes ("walk forward and stop");
* duration per step ("for 5 seconds", "for two minutes", "for half a minute") and distance ("3 meters");
* unsupported actions (``UNSUPPORTED``): each a category with its words; the matcher refuses a prompt that
  names one the library does not cover.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kinesis_tasks.motions.variants import SPEED_WORDS

#: Pace class -> (min, max) mean walking speed, m/s: what the default library's speed words promise
#: (``variants.SPEED_WORDS``: slowly, no word, quickly).
SPEED_CLASSES: dict[str, tuple[float, float]] = {"slow": SPEED_WORDS["slowly"], "normal": SPEED_WORDS[""],
                                                 "fast": SPEED_WORDS["quickly"]}
#: Speed word put in the canonical (embedded) text for each pace.
PACE_WORDS = {"slow": "slowly", "normal": "", "fast": "quickly"}

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
                "fifty": 50, "sixty": 60, "a": 1, "an": 1, "half a": 0.5, "a couple of": 2, "a few": 3}
_NUMBER = r"(?:(\d+(?:\.\d+)?)\s*|(" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")\s+)"
_DURATION = re.compile(r"\b(?:for\s+(?:about\s+|around\s+|another\s+)?)?" + _NUMBER + r"(?:more\s+)?"
                       r"(seconds?|secs?|s|minutes?|mins?)\b")
_SPEED = re.compile(r"\b(?:at\s+(?:about\s+|around\s+)?)?(\d+(?:\.\d+)?)\s*"
                    r"(m/s|mps|meters? per second|metres? per second|km/h|kmh|kph|kilometers? per hour|"
                    r"kilometres? per hour|mph|miles? per hour)")
_SPEED_UNITS = {"km": 1 / 3.6, "kp": 1 / 3.6, "ki": 1 / 3.6, "mp": 0.44704, "mi": 0.44704}
_DISTANCE = re.compile(r"\b(?:for\s+)?" + _NUMBER + r"(m|meters?|metres?)\b(?!\s*/)")


def _words(*patterns: str) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b")


#: Unsupported action category -> (what it is, pattern). Checked before everything else.
UNSUPPORTED: dict[str, tuple[str, re.Pattern]] = {
    "run": ("running", _words(r"run(?:s|ning|ner)?", "ran", r"jog(?:s|ging|ged)?", r"sprint(?:s|ing|ed)?",
                              r"dash(?:es|ing)?", r"rac(?:e|es|ing)", r"gallop(?:s|ing)?", "trot(?:s|ting)?")),
    "jump": ("jumping", _words(r"jump(?:s|ing|ed)?", r"hop(?:s|ping|ped)?", r"leap(?:s|ing|t|ed)?",
                               r"skip(?:s|ping|ped)?", r"bounc(?:e|es|ing)", r"vault(?:s|ing)?", r"pogo")),
    "flip": ("flips and acrobatics", _words(r"(?:back|front|side)?flip(?:s|ping|ped)?", r"somersaults?",
                                            r"cartwheels?", r"handstands?", r"headstands?", r"tumbl(?:e|es|ing)",
                                            r"(?:back|front)\s+flips?", r"acrobatics?")),
    "dance": ("dancing and spinning", _words(r"danc(?:e|es|ing|ed)", r"waltz(?:es|ing)?", "tango", "salsa",
                                             "ballet", r"moonwalk(?:s|ing)?", r"pirouettes?", r"twirl(?:s|ing)?",
                                             r"spin(?:s|ning)?", "spun", r"breakdanc\w*", r"disco", r"twerk\w*")),
    "sit": ("sitting, lying, kneeling or squatting", _words(
        r"sit(?:s|ting)?", "sat", "seated", r"lie(?:s)?", "lying", r"lay(?:s|ing)?", r"kneel(?:s|ing)?", "knelt",
        r"squat(?:s|ting)?", r"crouch(?:es|ing)?", r"fall(?:s|ing)?\s+(?:down|over)", "fell", r"sleep(?:s|ing)?",
        r"lunge(?:s)?", r"bow(?:s|ing)?\s+down", r"bend(?:s|ing)?\s+(?:down|over)", r"get(?:s)?\s+down",
        r"nap(?:s|ping)?", r"doz(?:e|es|ing)")),
    "style": ("a walking style the library does not have (tiptoeing, limping, balancing on one leg, ...)", _words(
        r"tip-?toe\w*", r"on (?:your |his |her |their |the )?(?:toes|heels)", r"limp(?:s|ing)?", r"on one (?:leg|foot)",
        r"balanc(?:e|es|ing)", r"stagger\w*", r"stumbl\w*", r"zombie", r"drunk(?:en|enly)?", r"crab", r"goose[- ]?step\w*",
        r"heel[- ]to[- ]toe", r"waddl\w*", r"sway(?:s|ing)?", r"lunges", r"stomp\w*", r"stamp(?:s|ing)?")),
    "crawl": ("crawling", _words(r"(?<!at a )crawl(?:s|ing|ed)?", r"creep(?:s|ing)?", r"slither\w*")),
    "swim": ("swimming", _words(r"swim(?:s|ming)?", "swam", r"div(?:e|es|ing)", r"float(?:s|ing)?", r"paddl\w*")),
    "climb": ("climbing, stairs and slopes", _words(r"climb(?:s|ing|ed)?", r"stairs?", r"staircases?", r"steps?\s+up",
                                                    "upstairs", "downstairs", r"ladders?", "uphill", "downhill",
                                                    r"ramps?", r"slopes?", r"hills?")),
    "backward": ("walking backward or sideways", _words(r"backwards?", "sideways", r"side\s*steps?",
                                                        r"sidestep(?:s|ping)?", r"in reverse", r"strafe\w*",
                                                        r"walk(?:s|ing)?\s+back", r"step(?:s)?\s+back")),
    "in_place": ("stepping or turning on the spot", re.compile(
        r"\b(?:walk(?:s|ing)?|march(?:es|ing)?|step(?:s|ping)?|turn(?:s|ing)?|rotat(?:e|es|ing))\s+"
        r"(?:\w+\s+)?(?:in place|on the spot)\b")),
    "kick": ("kicking (the penalty kick is its own task: a target on /kick_target, `kinesis launch ball_kick`)",
             _words(r"kick(?:s|ing|ed)?", r"penalty", r"shoot(?:s|ing)?", r"dribbl\w*", r"soccer", r"football")),
    "arms": ("arm and hand movements (the legs models have no arms)", _words(
        r"wav(?:e|es|ing)", r"clap(?:s|ping)?", r"throw(?:s|ing)?", "threw", r"punch(?:es|ing)?", r"box(?:es)?ing",
        r"(?:rais|lift|swing|flap|stretch)\w*\s+(?:your\s+|his\s+|her\s+|their\s+|the\s+|both\s+)?(?:arms?|hands?)",
        r"wav\w*\s+(?:hands?|arms?)", r"push-?ups?", r"pull-?ups?", r"juggl\w*")),
    "ride": ("riding or driving", _words(r"rid(?:e|es|ing)", "rode", r"driv(?:e|es|ing)", "drove", r"cycl(?:e|es|ing)",
                                         r"bik(?:e|es|ing)", r"skat(?:e|es|ing)", r"ski(?:s|ing)?", r"fl(?:y|ies|ying)",
                                         "flew")),
}

#: Unsupported category -> the intent of the closest thing a walking repertoire can do (None: by similarity).
CLOSEST: dict[str, dict | None] = {
    "run": {"action": "walk", "pace": "fast"}, "crawl": {"action": "walk", "pace": "slow"},
    "sit": {"action": "stand"}, "backward": {"action": "walk"}, "climb": {"action": "walk"},
    "in_place": {"action": "stand"}, "kick": {"action": "walk"}, "jump": None, "flip": None, "dance": None,
    "swim": None, "arms": {"action": "stand"}, "ride": None, "style": {"action": "walk", "pace": "slow"},
}

# Phrases taken out before the actions are read: they contain action words without asking for one.
_NOT_MOTION = re.compile(r"\b(?:turn(?:s|ing)?\s+(?:on|off|up|down|the\s+page|into)|all right|right (?:now|away)|"
                         r"alright|go ahead and|let's|please|at the end|in the end|stand by)\b")
_CONTINUE = re.compile(r"\b(?:without (?:stopping|a break|pausing)|(?:do not|never) stop(?:ping)?|non-?stop|"
                       r"keep(?:s|ing)? (?:on )?(?:walking|going|moving)|continu(?:e|es|ing|ously)(?: to)?(?: walk\w*)?)\b")

# Order matters: the first pattern to claim a stretch of text wins it.
_ACTIONS: tuple[tuple[str, re.Pattern], ...] = (
    ("walk", _CONTINUE),
    ("start", re.compile(
        r"\b(?:(?:start|begin|began|begun|commence|resume)(?:s|ning|ing|ed)?\s+(?:to\s+)?(?:walk|mov|go|stroll|march)\w*|"
        r"(?:start|begin|commence)(?:s|ning|ing|ed)?|set(?:s|ting)?\s+off|get(?:s|ting)?\s+(?:going|moving)|"
        r"(?:from|out of)\s+(?:a\s+)?(?:standstill|stand\s+still|standing(?:\s+still)?|rest|stop|halt|stationary\s+start)|"
        r"take\s+(?:the\s+)?first\s+steps?|accelerat\w*|speed(?:s|ing)?\s+up)\b")),
    ("stop", re.compile(
        r"\b(?:(?:stop|halt|cease)(?:s|ped|ping|ed|ing)?\s+(?:walk|mov|go)\w*|"
        r"(?:come|comes|coming|came|bring\w*\s+\w+(?:self)?)\s+to\s+(?:a\s+)?(?:stop|halt|rest|standstill|stand\s+still)|"
        r"slow(?:s|ing)?\s+(?:down\s+)?to\s+(?:a\s+)?(?:stop|halt|standstill)|decelerat\w*|"
        r"stop(?:s|ped|ping)?|halt(?:s|ed|ing)?|brak(?:e|es|ing)|pull(?:s)?\s+up)\b")),
    ("stand", re.compile(
        r"\b(?:without (?:moving|motion|movement|walking|taking a step)|not (?:moving|walking)|"
        r"(?:do not|don't|never) (?:move|walk)|no (?:movement|motion)|motionless|stationary|immobile|"
        r"(?:stand(?:s|ing)?|stay(?:s|ing)?|keep(?:s|ing)?|hold(?:s|ing)?|be|remain(?:s|ing)?|wait(?:s|ing)?|stood)"
        r"\s+(?:completely\s+|perfectly\s+|very\s+)?still|still\s+(?:stand\w*|position)|"
        r"stand(?:s|ing)?(?:\s+(?:up|upright|there|around|in place|on the spot|tall|straight))?|stood|"
        r"stay(?:s|ing|ed)?(?:\s+(?:put|there|here|in place|on the spot|where you are))?|"
        r"remain(?:s|ing|ed)?|wait(?:s|ing|ed)?|paus(?:e|es|ing)|freez(?:e|es|ing)|idl(?:e|es|ing)|"
        r"(?:do )?nothing|rest(?:s|ing)?|hold (?:your |the )?position|in place|on the spot)\b")),
    ("walk", re.compile(
        r"\b(?:walk(?:s|ing|ed)?|stroll(?:s|ing|ed)?|ambl(?:e|es|ing)|saunter(?:s|ing)?|march(?:es|ing)?|"
        r"strid(?:e|es|ing)|wander(?:s|ing)?|hik(?:e|es|ing)|trek(?:s|king)?|promenad\w*|"
        r"pac(?:e|es|ing)\s+(?:forward|ahead|along)|"
        r"go(?:es|ing)?|went|mov(?:e|es|ing)|head(?:s|ing)?\s+(?=forward|ahead|off|out|home|straight|north|south|east|west|"
        r"left|right|to|toward|towards|for|down|along|across|over|into)|proceed(?:s|ing)?|advanc(?:e|es|ing)|travel\w*|"
        r"(?:per)?ambulat\w*|tread(?:s|ing)?|trudg\w*|plod\w*|shuffl\w*|tramp\w*|on foot|"
        r"step(?:s|ping)?\s+(?:forward|ahead)|take\s+(?:a\s+)?(?:few\s+)?(?:walk|steps?)|"
        r"make\s+(?:your|his|her|their|its)\s+way|cross(?:es|ing)?|navigat\w*|locomot\w*|gait)\b")),
)
_TURNING = re.compile(r"\b(?:turn(?:s|ing|ed)?|circl(?:e|es|ing|ed)|curv(?:e|es|ing|ed)|arc(?:s|ing)?|veer(?:s|ing|ed)?|"
                      r"swerv(?:e|es|ing)|bend(?:s|ing)?|loop(?:s|ing)?|u-?turn)\b")
_CIRCLE = re.compile(r"\b(?:(?:a|one|full|complete)\s+(?:full\s+|complete\s+)?(?:circle|loop|lap)|circles|in\s+circles?|"
                     r"(?:a|in\s+a)\s+(?:big\s+|small\s+|wide\s+|large\s+)?circle|circle|full turn|360)\b")
_HALF_TURN = re.compile(r"\b(?:turn(?:s|ing)?\s+(?:a)?round|u-?turn|about[- ]face|180)\b")
_LEFT = _words("left", r"counter-?\s?clockwise", r"anti-?\s?clockwise", "ccw", "widdershins")
_RIGHT = _words("right", "clockwise", "cw")
_STRAIGHT = _words(r"straight(?:\s+ahead|\s+on|\s+line)?", r"forwards?", "ahead", "in a (?:straight )?line")
_PACES: tuple[tuple[str, re.Pattern], ...] = (
    ("normal", _words(r"(?:normal|usual|regular|comfortable|moderate|average|medium|steady|natural|ordinary|typical|"
                      r"standard|preferred|self-selected|everyday|walking)\s+(?:pace|speed|rate|tempo|gait|walk\w*|way)",
                      "normally", "naturally", "regularly", "steadily", "moderately", "not too fast", "not too slow")),
    ("slow", _words(r"slow(?:ly|er|est)?", "leisurely", r"gentl(?:y|e)", "unhurried", r"relax(?:ed|edly)",
                    r"casual(?:ly)?", r"lazil?y", r"careful(?:ly)?", r"cautious(?:ly)?", r"calm(?:ly)?",
                    r"stroll(?:s|ing|ed)?", r"ambl(?:e|es|ing)", r"saunter(?:s|ing)?", "at a crawl", "sluggish(?:ly)?",
                    r"tired(?:ly)?", "wearily", "easy")),
    ("fast", _words(r"fast(?:er|est)?", r"quick(?:ly|er|est)?", r"rapid(?:ly)?", r"brisk(?:ly)?", r"hurr(?:y|ied|iedly|ies)",
                    r"swift(?:ly)?", r"speed(?:y|ily)", r"hast(?:e|y|ily)", r"rush(?:ed|ing)?", "in a rush",
                    r"power\s*walk\w*", r"speed\s*walk\w*", "energetically", "vigorously", "as fast as", "urgently")),
)


@dataclass(frozen=True)
class Unsupported:
    """An action the walking repertoire does not have: its category (``UNSUPPORTED``) and the words."""

    category: str
    words: str

    @property
    def description(self) -> str:
        return UNSUPPORTED[self.category][0]


@dataclass(frozen=True)
class Step:
    """One step of a prompt. ``action``: walk, stand, start or stop (None: not recognised); ``pace``: slow,
    normal or fast; ``speed`` m/s if given; ``turn``: +1 left, -1 right, 0 straight, None unspecified;
    ``turning``: a turning walk is asked for; ``circles``: full turns asked for (0.5 = turn around);
    ``duration`` s; ``distance`` m; ``label``: the library label to take it from (set by the matcher when the
    prompt is matched by similarity rather than read by rules)."""

    text: str
    action: str | None = None
    pace: str | None = None
    speed: float | None = None
    turn: int | None = None
    turning: bool = False
    circles: float | None = None
    duration: float | None = None
    distance: float | None = None
    label: str | None = None

    @property
    def wants_turn(self) -> bool:
        return self.turning or self.turn in (-1, 1)


@dataclass(frozen=True)
class PromptIntent:
    """What a prompt asks for. ``text``: canonical text to embed (numbers removed, speed words normalised);
    ``steps`` in order; ``unsupported`` actions named. ``speed_word``/``speed``/``side``/``duration`` summarise
    the steps (the first step's that has one; duration: the only step's, or the sum when every step has one)."""

    prompt: str
    text: str
    speed_word: str | None = None
    speed: float | None = None
    side: str | None = None
    duration: float | None = None
    steps: tuple[Step, ...] = ()
    unsupported: tuple[Unsupported, ...] = field(default=())

    @property
    def pace(self) -> str | None:
        return next((s.pace for s in self.steps if s.pace), None)

    @property
    def turn(self) -> int | None:
        return next((s.turn for s in self.steps if s.turn is not None), None)

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(s.action for s in self.steps if s.action)


def speed_class(speed: float) -> str:
    """slow, normal or fast for a walking speed (m/s), by ``SPEED_CLASSES``."""
    if speed < SPEED_CLASSES["normal"][0]:
        return "slow"
    return "normal" if speed < SPEED_CLASSES["fast"][0] else "fast"


def normalise(prompt: str) -> str:
    """Lower case, one space between words, punctuation that separates clauses as ' , ' or ' ; '."""
    text = prompt.lower().replace("\u2019", "'").replace("can't", "cannot").replace("won't", "will not")
    text = text.replace("n't", " not")
    text = re.sub(r"\b(counter|anti|back|front|side|u)\s*-\s*", r"\1", text)
    text = re.sub(r"\b(counter|anti)\s+clockwise\b", r"\1clockwise", text)
    text = re.sub(r"[.!?]+(\s|$)", " ; ", text)
    text = re.sub(r"\s*([,;:])\s*", r" \1 ", text)
    text = re.sub(r"[^a-z0-9/.,;:' -]", " ", text)
    return " ".join(text.split())


def parse_prompt(prompt: str) -> PromptIntent:
    """The intent of ``prompt`` (see the module docstring); ValueError for an empty prompt or a duration <= 0."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt is empty: describe a motion, e.g. 'walk forward slowly for 5 seconds'")
    text = normalise(prompt)
    unsupported = [Unsupported(category, found.group(0)) for category, (_, pattern) in UNSUPPORTED.items()
                   for found in pattern.finditer(text)]
    # Steps of one clause merge ("walk forward fast, turning left"); clauses in sequence do not ("walk, then turn left").
    steps = [step for part in _ordered_parts(_NOT_MOTION.sub(" ", text)) for step in _merge(_split_actions(part))]
    for step in steps:
        if step.duration is not None and step.duration <= 0:
            raise ValueError(f"prompt {prompt!r}: the duration must be > 0 s")
        if step.distance is not None and step.distance <= 0:
            raise ValueError(f"prompt {prompt!r}: the distance must be > 0 m")
    first = next((s for s in steps if s.pace), None)
    turn = next((s.turn for s in steps if s.turn in (-1, 1)), None)
    durations = [s.duration for s in steps if s.duration is not None]
    duration = durations[0] if len(steps) == 1 and durations else (
        sum(durations) if steps and len(durations) == len(steps) else None)
    return PromptIntent(
        prompt=prompt, text=_canonical(text), speed_word=(PACE_WORDS[first.pace] or None) if first else None,
        speed=next((s.speed for s in steps if s.speed is not None), None), side={1: "left", -1: "right"}.get(turn),
        duration=duration, steps=tuple(steps), unsupported=tuple(unsupported))


_SEQUENCE = re.compile(r"\s*(?:;|\band then\b|\bthen\b|\bafter that\b|\bafterwards?\b|\bfollowed by\b|\band finally\b|"
                       r"\bfinally\b|\bnext\b|\beventually\b|\bsubsequently\b|\bonce done\b)\s*")


def _ordered_parts(text: str) -> list[str]:
    """Clauses in the order they are to be done."""
    parts = []
    for part in _SEQUENCE.split(text):
        part = part.strip(" ,:")
        if found := re.search(r"\bbefore\b", part):
            parts += [part[:found.start()], part[found.end():]]
        elif found := re.match(r"(?:after|once)\b(.*?),(.*)", part):
            parts += [found.group(1), found.group(2)]
        elif found := re.search(r"\b(?:after|once)\b", part):
            parts += [part[found.end():], part[:found.start()]]
        else:
            parts.append(part)
    return [p.strip(" ,:") for p in parts if p.strip(" ,:")]


def _action_hits(text: str) -> list[tuple[int, str]]:
    """(position, action) of the action phrases of ``text``, in order; the first pattern to claim text wins."""
    hits: list[tuple[int, str]] = []
    taken = [False] * len(text)
    for kind, pattern in _ACTIONS:
        for found in pattern.finditer(text):
            if not any(taken[found.start():found.end()]):
                hits.append((found.start(), kind))
                taken[found.start():found.end()] = [True] * (found.end() - found.start())
    if not any(kind == "walk" for _, kind in hits):
        for found in _TURNING.finditer(text):  # "turn left": a turning walk
            if not any(taken[found.start():found.end()]):
                hits.append((found.start(), "walk"))
                break
    return sorted(hits)


def _split_actions(part: str) -> list[Step]:
    """A clause split where its action changes ("walk forward and stop"); words before the first action
    belong to it."""
    groups: list[tuple[int, str]] = []
    for start, kind in _action_hits(part):
        if not groups or groups[-1][1] != kind:
            groups.append((start, kind))
    if not groups:
        return [_parse_piece(part, None)]
    bounds = [0] + [start for start, _ in groups[1:]] + [len(part)]
    return [_parse_piece(part[bounds[i]:bounds[i + 1]], kind) for i, (_, kind) in enumerate(groups)]


def _parse_piece(text: str, action: str | None) -> Step:
    """Speed, duration, distance, pace and turn of one action's words."""
    duration = speed = distance = None
    if found := _SPEED.search(text):
        speed = float(found.group(1)) * _SPEED_UNITS.get(found.group(2)[:2], 1.0)
        text = text[:found.start()] + " " + text[found.end():]
    if found := _DURATION.search(text):
        value = float(found.group(1)) if found.group(1) else float(NUMBER_WORDS[found.group(2)])
        duration = value * (60.0 if found.group(3).startswith("min") else 1.0)
        text = text[:found.start()] + " " + text[found.end():]
    if found := _DISTANCE.search(text):
        distance = float(found.group(1)) if found.group(1) else float(NUMBER_WORDS[found.group(2)])
        text = text[:found.start()] + " " + text[found.end():]
    pace = speed_class(speed) if speed is not None else next((n for n, p in _PACES if p.search(text)), None)
    left, right = list(_LEFT.finditer(text)), list(_RIGHT.finditer(text))
    turn = None
    if left or right:  # "not right but left": the last one named
        turn = 1 if not right or (left and left[-1].start() > right[-1].start()) else -1
    turning = bool(_TURNING.search(text))
    if turn is None and not turning and _STRAIGHT.search(text):
        turn = 0
    circles = 0.5 if _HALF_TURN.search(text) else 1.0 if _CIRCLE.search(text) else None
    if circles and re.search(r"\b(?:two|2|twice)\s+(?:full\s+)?(?:circles|loops|laps|times)\b", text):
        circles = 2.0
    if action is None and (turning or pace or turn is not None):
        action = "walk"  # "slowly to the left"
    if action in ("stand", "stop"):
        turning, turn, circles = False, None, None
    return Step(text=" ".join(text.split()), action=action, pace=pace, speed=speed, turn=turn, turning=turning,
                circles=circles, duration=duration, distance=distance)


def _merge(steps: list[Step]) -> list[Step]:
    """Consecutive steps of the same action, or a clause without one after an action, become one step."""
    out: list[Step] = []
    for step in steps:
        if out and (step.action is None or step.action == out[-1].action):
            prev = out[-1]
            out[-1] = Step(text=f"{prev.text} {step.text}", action=prev.action,
                           pace=prev.pace or step.pace, speed=prev.speed if prev.speed is not None else step.speed,
                           turn=prev.turn if prev.turn not in (None, 0) or step.turn is None else step.turn,
                           turning=prev.turning or step.turning, circles=prev.circles or step.circles,
                           duration=_sum(prev.duration, step.duration), distance=_sum(prev.distance, step.distance))
        elif out and out[-1].action is None:  # modifiers before the first action ("slowly, walk")
            prev = out.pop()
            out.append(Step(text=f"{prev.text} {step.text}", action=step.action, pace=step.pace or prev.pace,
                            speed=step.speed if step.speed is not None else prev.speed,
                            turn=step.turn if step.turn is not None else prev.turn,
                            turning=step.turning or prev.turning, circles=step.circles or prev.circles,
                            duration=_sum(prev.duration, step.duration), distance=_sum(prev.distance, step.distance)))
        else:
            out.append(step)
    return out


def _sum(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


_CANONICAL = {"slowly": _words(r"slow(?:ly|er)?", "leisurely", r"gentl(?:y|e)", "unhurriedly"),
              "quickly": _words(r"fast(?:er)?", r"quick(?:ly|er)?", r"rapid(?:ly)?", r"brisk(?:ly)?", "hurriedly",
                                r"swift(?:ly)?", "as fast as"),
              "": _PACES[0][1]}


def _canonical(text: str) -> str:
    """The prompt without numbers and units, speed words normalised (as the default library's labels say
    them: slowly, quickly, nothing for a normal pace), for embedding."""
    for pattern in (_SPEED, _DURATION, _DISTANCE):
        text = pattern.sub(" ", text)
    for word, pattern in _CANONICAL.items():
        text = pattern.sub(word, text)
    text = re.sub(r"\bat an?\s+(?=[,;]|$)", " ", text)
    return " ".join(w for w in text.replace(";", " ").replace(",", " ").split()) or text.strip()
