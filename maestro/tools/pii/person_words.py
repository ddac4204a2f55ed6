"""Word lists for the person rules (:mod:`maestro.tools.pii.person`): cues, vetoes, street and org words.

General English vocabulary only - no lists of names. Every list is lower case.
"""

from __future__ import annotations

__all__ = [
    "ADDRESS_UNITS",
    "ADDRESS_VERBS",
    "CALENDAR",
    "COMMON_SUFFIXES",
    "COMMON_WORDS",
    "FIELD_LABELS",
    "GREETINGS",
    "HUMAN_VERBS",
    "LABELS",
    "ORG_SUFFIXES",
    "ORG_WORDS",
    "PARTICLES",
    "PLACE_PREFIXES",
    "RELATIONS",
    "SPEECH_VERBS",
    "STREET_BEFORE",
    "STREET_WORDS",
    "TITLES",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# honorifics and forms of address: the next capitalised words are a name
TITLES = _words(
    "mr mrs ms miss mx dr prof professor sir madam madame dame lord lady mme mlle mister herr frau sr sra "
    "srta señor señora monsieur rev reverend fr capt captain sgt sergeant lt lieutenant col colonel "
    "officer judge senator mayor dean coach uncle aunt auntie grandma grandpa"
)
GREETINGS = _words("dear hi hello hey hiya greetings thanks regards sincerely cheers yours love")
# "Name: X", "Signed: X": a label followed by a colon (or "name X", "name is X")
LABELS = _words(
    "name names surname forename nickname signed attn attention author from to cc contact customer "
    "patient employee applicant client guest passenger founders founder members authors speakers "
    "participants attendees winners candidates children kids team"
)
# kinship and roles: "my son Jonas", "her partner Alex"
RELATIONS = _words(
    "wife husband son daughter partner kid child boy girl mother mom mum father dad brother sister friend "
    "colleague boss manager neighbour neighbor cousin nephew niece grandson granddaughter fiance fiancee "
    "spouse guardian beneficiary stepson stepdaughter"
)
# "speak to X", "ask for X"
ADDRESS_VERBS = _words("speak spoke talk talked ask asked married meet met add added")
# "said X", "starring X": the name follows the verb
SPEECH_VERBS = _words(
    "said says asked replied answered told tells wrote thanked shouted yelled screamed smiled waved "
    "starring featuring feat "
    "directed produced written composed sung performed narrated"
)
# "X lives ...", "X said ...": verbs that take a person as subject
HUMAN_VERBS = _words(
    "lives lived said says shouted yelled screamed whispered asked asks told tells wrote writes began "
    "begins spent married smiled laughed cried thinks thought believes wants wanted loves loved hates "
    "spoke speaks explained added replied answered died works worked joined studied graduated retired "
    "resigned"
)
# labels in forms and transcripts that look like names at the start of a line
FIELD_LABELS = _words(
    "name address phone mobile desk fax office email e-mail website web date time subject re note notes "
    "personal info user bot agent customer q a question answer summary title company organization "
    "department dept position role status id account card iban location city country zip code when where "
    "who what why how which venue host speaker attendees agenda"
)
# days and months are capitalised but never a name here
CALENDAR = _words(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july "
    "august september october november december today tomorrow yesterday"
)
# address units end a name: "Mrs. Barbara Yudina Apt. 675"
ADDRESS_UNITS = _words("apt apartment suite unit floor fl room rm box po p.o. bldg building flat")
PARTICLES = _words("van von de der den da di del della dos das du le la bin ibn al el ter ten")
STREET_WORDS = _words(
    "street st avenue ave road rd boulevard blvd lane ln drive dr way court ct place pl square sq parkway "
    "pkwy highway hwy terrace crescent close gardens strasse straße str gasse weg vej platz allee turnpike "
    "mill mills park parks flat flats forge forges row walk trail circle cir bypass pass crossing junction "
    "hill hills heights ridge view vista port ports plaza mall expressway freeway motorway tunnel bridge "
    "pike spur loop manor station isle village villages squares"
)
STREET_BEFORE = _words("rue via calle avenida rua ulica ul utca corso viale piazza on")
PLACE_PREFIXES = _words("st st. saint san santa mount mt fort ft port lake cape new north south east west")
# legal-form suffixes, compared case-sensitively ("AS" is a company, "as" is a word)
ORG_SUFFIXES = frozenset(
    "Inc Inc. Ltd Ltd. LLC PLC Plc Corp Corp. Co Co. GmbH AG SA S.A. BV NV Oy AB AS KG SE SpA S.p.A. Pty LLP "
    "LP Limited".split()
)
ORG_WORDS = _words(
    "incorporated corporation llc plc gmbh group company companies agency bank university college school "
    "institute foundation partners "
    "associates holdings industries technologies systems solutions services labs records band magazine "
    "news orchestra sons brothers bros investments capital consulting media software entertainment weekly "
    "daily times service force union kingdom council committee society club association network studios "
    "productions pharmaceuticals motors airlines insurance restaurant hotel cafe museum hospital clinic "
    "church ministry department"
)
# English words (and well-known places) that are also in the census name lists: a gazetteer hit on one of
# these is no evidence of a name ("Will you ...", "Grace period", "Brown bag", "flights to Georgia")
COMMON_WORDS = _words(
    "will may june april august march grace hope joy faith mark bill rose page art dean guy jack bob sue pat "
    "ray rich frank earl major king prince royal sunny summer autumn winter spring dawn crystal ruby pearl "
    "amber ivy holly iris daisy lily violet jade hazel ginger olive sandy rusty buck chase chance clay cliff "
    "dale drew glen grant hunter jay lane lee miles noble price reed rob rod sky stone storm penny candy "
    "cherry honey misty star sterling ward christian don gene van carol mercedes porsche tesla jordan "
    "georgia virginia carolina florence paris austin houston dallas denver phoenix orlando madison lincoln "
    "jackson washington columbus india china asia africa america israel kenya egypt trinity aurora regina "
    "augusta charlotte helena alexandria salem troy cleveland sydney victoria chelsea savannah brooklyn "
    "vienna berlin london cairo lima york kent devon "
    "young white black green brown gray grey long short little small large big hall wood woods hill hills "
    "field fields ford rivers river lake bank banks bell church castle house street mill mills park parks "
    "cross cook baker miller smith fisher turner carter walker porter hunter mason taylor shepherd farmer "
    "gardner singer weaver butler cash gold silver sharp strong wise bright best good love may sweet "
    "german french english irish welsh trust fair free early late day days night north south "
    "east west new old golden holiday easter christmas sunday monday tuesday wednesday thursday friday "
    "saturday god lord christ angel angels heaven saint paradise bliss glory liberty justice honor "
    "patience prudence charity constance verity temperance harmony melody destiny serenity "
    "unity story time man men boy girl guy baby lady son sun moon rain snow wind cloud sea bay brook ocean "
    "city town county state court law pool post office field station store standard power energy "
    "chip max bud bunny buddy champ ace happy lucky sonny junior senior sister brother "
    "general private sergeant officer judge marshal bishop pope deacon abbot "
    "apple cherry berry peach plum lemon orange olive basil sage rosemary thyme pepper "
    "pip bond boone cole colt nash wolf fox bird crow swan "
    "web net car bus van echo delta alpha omega nova luna sol terra france princess queen duchess "
    "southern northern eastern western upper lower central greater united walk"
)
# common nouns that spaCy's small model tags as people when capitalised, by their ending
COMMON_SUFFIXES = (
    "tion",
    "sion",
    "ness",
    "ment",
    "ship",
    "ity",
    "ism",
    "ology",
    "person",
    "grapher",
    "ware",
    "hood",
    "ics",
)
