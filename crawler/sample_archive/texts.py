"""Seeded generation of the sentences the sample archive speaks.

The text is deliberately awkward for a normaliser: years, counts, money, percentages, ordinals,
abbreviations, quotes and long clause-chained sentences, because those are what real transcripts
contain and what the align stage must turn into the model's alphabet.
"""

from __future__ import annotations

import random
import re

FIRST_NAMES = [
    "Alice", "Benjamin", "Clara", "Daniel", "Eleanor", "Francis", "Grace", "Henry", "Isabel",
    "James", "Katherine", "Leonard", "Margaret", "Nathan", "Olivia", "Peter", "Rosa", "Samuel",
    "Teresa", "Walter",
]
SURNAMES = [
    "Anderson", "Baker", "Carter", "Dawson", "Ellis", "Fletcher", "Gordon", "Harper", "Irving",
    "Jennings", "Keller", "Lawrence", "Morgan", "Norris", "Owens", "Porter", "Reynolds", "Sullivan",
    "Turner", "Whitaker",
]
PLACES = [
    "the valley", "the old harbour", "the county", "the northern district", "the river town",
    "the city centre", "the farming villages", "the mountain pass", "the eastern suburbs",
    "the university campus",
]
ORGS = [
    "city council", "public library", "historical society", "school board", "water authority",
    "museum", "railway company", "health department", "weather service", "parks committee",
]
NOUNS = [
    "bridge", "report", "garden", "schoolhouse", "budget", "road", "festival", "hospital wing",
    "railway line", "reading room", "market hall", "water tower",
]
PLURALS = [
    "houses", "students", "visitors", "volunteers", "trees", "books", "letters", "families",
    "bicycles", "recordings", "lamps", "boats",
]
TOPICS = [
    "the weather", "the harvest", "the new railway", "their childhood", "the election",
    "the price of bread", "an old photograph", "the flood of that spring", "music and poetry",
    "the history of the town",
]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
UNITS = ["ton", "barrel", "ticket", "pound", "gallon", "bushel"]
TITLES = ["Dr.", "Mr.", "Mrs.", "Ms.", "Prof."]

TEMPLATES = [
    "In {year}, the {org} reported {count} new {plural} across {place}.",
    '"{quote}," said {title} {surname}.',
    "{title} {surname} arrived at {house} Elm St. shortly after {hour} o'clock.",
    "The price rose by {pct}% to ${dollars}.{cents:02d} per {unit}.",
    "It was the {ordinal} time the {org} had met since {month} {day}, {year}.",
    "{first} and {first2} walked along the river, talking about {topic}.",
    "Most of the {plural} in {place} were built before {year}.",
    "According to the U.S. census, about {big} people lived in {place} at the time.",
    "{title} {surname} asked whether the {noun} could be finished by {weekday}.",
    "The committee voted {a} to {b} in favour of the new {noun}.",
    "When the rain finally stopped, the children ran outside, and the old dog followed them "
    "down the hill toward {place}.",
    "By the end of {year}, nearly {pct}% of the {plural} had been repaired.",
    "The {noun} on {first2} Street cost ${big2} and took {count} months to build.",
    "She wrote that the {noun} was \"simply the finest in {place}\".",
    "On {weekday}, {month} {day}, the {org} opened its doors at {hour} a.m.",
    "Nobody expected the {noun} to last, yet it is still standing, more than {count} years later.",
    "{first} {surname} was born in {year} and worked for the {org} for {count} years.",
    "The {ordinal} chapter describes {topic}, the {noun}, and the people of {place}.",
    "If you listen carefully, you can still hear the bells of {place} on a quiet {weekday}.",
    "There were {count} {plural}, {count2} {plural2}, and one very tired {noun} keeper.",
    "The report, published in {month} {year}, was read aloud at the meeting of the {org}.",
    "Although the journey was long, the {plural} arrived safely, and everyone agreed that the "
    "trip had been worth it.",
    "Mr. and Mrs. {surname} donated {count} {plural} to the {org} in {year}.",
    "The temperature fell to {small} degrees, the lowest since {year}.",
    "What, she asked, would happen to the {noun} if the {org} ran out of money?",
    "The old {noun} was closed in {year}; a new one opened {count} years later.",
    "About one in {small} {plural} came from outside {place}.",
    "Tickets cost ${small} for adults and ${small2} for children under {count}.",
]

QUOTES = [
    "We will not give up on this town",
    "Every voice deserves to be heard",
    "The river has always been our road",
    "Nobody remembers a winter like that one",
    "Books are the quiet teachers of a community",
    "This is only the beginning",
]

ORDINALS = ["first", "second", "third", "fourth", "fifth", "1st", "2nd", "3rd", "10th", "21st"]

GERMAN = [
    "Der Zug nach Hamburg fährt heute eine Stunde später ab.",
    "Im Sommer arbeiten viele Studenten auf den Bauernhöfen am Fluss.",
    "Die Bibliothek bleibt am Sonntag geschlossen.",
    "Meine Großmutter erzählt gern Geschichten aus ihrer Kindheit.",
    "Nach dem Regen war die Luft im Wald ganz frisch und kühl.",
    "Der Bürgermeister eröffnete das neue Rathaus mit einer kurzen Rede.",
    "Wir treffen uns morgen früh vor dem Bahnhof.",
    "Das Museum zeigt alte Karten und Briefe aus dem Hafen.",
    "Im Winter frieren die kleinen Seen oft vollständig zu.",
    "Die Kinder spielen nach der Schule auf dem Marktplatz.",
    "Niemand wusste, wer die Glocke im Turm repariert hatte.",
    "Am Abend sangen die Fischer Lieder über das Meer.",
]
SPANISH = [
    "El tren hacia la costa sale todos los días a las ocho.",
    "La biblioteca del pueblo tiene libros muy antiguos.",
    "Mi abuelo cultivaba naranjas en un pequeño huerto.",
    "Después de la lluvia, las calles olían a tierra mojada.",
    "El alcalde inauguró el nuevo mercado con un discurso breve.",
    "Los niños juegan en la plaza hasta que oscurece.",
    "Nadie sabía quién había pintado el viejo puente.",
    "En invierno, el río se vuelve más ancho y más lento.",
    "Las cartas del museo cuentan la historia del puerto.",
    "Por la noche, los pescadores cantaban canciones del mar.",
]
FOREIGN = {"de": GERMAN, "es": SPANISH}


def english_sentence(rng: random.Random) -> str:
    """One English sentence from a random template with random fillers."""
    template = rng.choice(TEMPLATES)
    fillers = {
        "year": rng.randint(1850, 2023),
        "count": rng.randint(2, 48),
        "count2": rng.randint(2, 19),
        "org": rng.choice(ORGS),
        "plural": rng.choice(PLURALS),
        "plural2": rng.choice(PLURALS),
        "place": rng.choice(PLACES),
        "quote": rng.choice(QUOTES),
        "title": rng.choice(TITLES),
        "surname": rng.choice(SURNAMES),
        "first": rng.choice(FIRST_NAMES),
        "first2": rng.choice(FIRST_NAMES),
        "house": rng.randint(3, 250),
        "hour": rng.randint(1, 11),
        "pct": rng.choice([5, 8, 12, 15, 20, 25, 30, 40, 75]),
        "dollars": rng.randint(1, 40),
        "cents": rng.choice([0, 25, 50, 75, 99]),
        "unit": rng.choice(UNITS),
        "ordinal": rng.choice(ORDINALS),
        "month": rng.choice(MONTHS),
        "day": rng.randint(1, 28),
        "topic": rng.choice(TOPICS),
        "big": f"{rng.randint(2, 90) * 1000 + rng.randint(0, 9) * 100:,}",
        "big2": f"{rng.randint(3, 95) * 1000:,}",
        "noun": rng.choice(NOUNS),
        "weekday": rng.choice(WEEKDAYS),
        "a": rng.randint(5, 12),
        "b": rng.randint(0, 4),
        "small": rng.randint(2, 9),
        "small2": rng.randint(1, 4),
    }
    text = template.format(**fillers)
    return text[0].upper() + text[1:]


def english_sentences(rng: random.Random, n: int) -> list[str]:
    """``n`` sentences, avoiding immediate repeats so neighbours never share a label."""
    out: list[str] = []
    while len(out) < n:
        s = english_sentence(rng)
        if not out or s != out[-1]:
            out.append(s)
    return out


def foreign_sentences(rng: random.Random, lang: str, n: int) -> list[str]:
    pool = FOREIGN[lang]
    return [pool[i % len(pool)] for i in rng.sample(range(len(pool) * 4), n)]


def asr_style(rng: random.Random, text: str) -> str:
    """What a speech recogniser's caption of ``text`` tends to look like.

    Lower case, no punctuation, numbers left as the recogniser heard them, and roughly one word
    in eight substituted or dropped — plausible, and wrong as a training label.
    """
    confusions = {"the": "a", "a": "the", "and": "in", "in": "and", "of": "uh", "to": "too",
                  "for": "four", "was": "is", "were": "where", "their": "there"}
    words = [re.sub(r"[^\w\s']", "", w).strip("'").lower() for w in text.split()]
    out = []
    for w in words:
        if not w:
            continue
        r = rng.random()
        if r < 0.06:
            continue
        if r < 0.14:
            w = confusions.get(w, w[: max(1, len(w) - 2)])
        out.append(w)
    return " ".join(out)
