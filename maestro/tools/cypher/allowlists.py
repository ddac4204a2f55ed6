"""What the guard allows by name: procedures, functions; and why it refuses the names it knows.

Everything here is an allow-list: a procedure or function that is not listed is refused. The reasons
for well-known dangerous families (``dbms.*``, ``apoc.load.*``, ``apoc.cypher.*`` ...) only make the
refusal message clearer; they are not what keeps them out.
"""

from __future__ import annotations

__all__ = [
    "BUILTIN_FUNCTIONS",
    "DEFAULT_APOC_FUNCTIONS",
    "DEFAULT_PROCEDURES",
    "function_refusal",
    "procedure_refusal",
]

DEFAULT_PROCEDURES: frozenset[str] = frozenset(
    {
        "db.labels",
        "db.relationshipTypes",
        "db.propertyKeys",
        "db.schema.visualization",
        "db.schema.nodeTypeProperties",
        "db.schema.relTypeProperties",
    }
)
"""Read-only schema listings; names are compared exactly (procedure names are case-sensitive)."""

DEFAULT_APOC_FUNCTIONS: frozenset[str] = frozenset(
    {
        "apoc.text.join",
        "apoc.text.split",
        "apoc.text.replace",
        "apoc.text.capitalize",
        "apoc.text.clean",
        "apoc.text.lpad",
        "apoc.text.rpad",
        "apoc.text.levenshteinDistance",
        "apoc.coll.sum",
        "apoc.coll.avg",
        "apoc.coll.min",
        "apoc.coll.max",
        "apoc.coll.toSet",
        "apoc.coll.flatten",
        "apoc.coll.sort",
        "apoc.coll.contains",
        "apoc.coll.frequencies",
        "apoc.coll.union",
        "apoc.coll.intersection",
        "apoc.coll.subtract",
        "apoc.coll.zip",
        "apoc.coll.pairs",
        "apoc.map.merge",
        "apoc.map.fromPairs",
        "apoc.map.fromLists",
        "apoc.map.removeKey",
        "apoc.map.removeKeys",
        "apoc.map.submap",
        "apoc.map.values",
        "apoc.map.clean",
        "apoc.date.format",
        "apoc.date.parse",
    }
)
"""Pure APOC functions (no I/O, no writes, no nested Cypher); compared exactly."""

BUILTIN_FUNCTIONS: frozenset[str] = frozenset(
    {
        # aggregation
        "avg", "collect", "count", "max", "min", "percentilecont", "percentiledisc", "stdev", "stdevp",
        "sum",
        # predicates and lists
        "all", "any", "none", "single", "exists", "isempty", "coalesce", "head", "last", "tail", "size",
        "length", "keys", "labels", "nodes", "relationships", "range", "reduce", "reverse",
        "tobooleanlist", "tofloatlist", "tointegerlist", "tostringlist",
        # scalar
        "elementid", "endnode", "startnode", "id", "properties", "type", "timestamp", "toboolean",
        "tobooleanornull", "tofloat", "tofloatornull", "tointeger", "tointegerornull", "tostring",
        "tostringornull", "valuetype", "char_length", "character_length", "nullif",
        # strings
        "left", "right", "ltrim", "rtrim", "trim", "btrim", "lower", "upper", "tolower", "toupper",
        "replace", "split", "substring", "normalize",
        # maths
        "abs", "ceil", "floor", "rand", "round", "sign", "e", "exp", "log", "log10", "sqrt", "pi", "sin",
        "cos", "tan", "cot", "asin", "acos", "atan", "atan2", "degrees", "radians", "haversin", "isnan",
        # temporal and spatial
        "date", "datetime", "localdatetime", "localtime", "time", "duration", "point", "distance",
        "date.truncate", "datetime.truncate", "localdatetime.truncate", "localtime.truncate",
        "time.truncate", "date.realtime", "date.statement", "date.transaction", "datetime.fromepoch",
        "datetime.fromepochmillis", "datetime.realtime", "datetime.statement", "datetime.transaction",
        "localdatetime.realtime", "localdatetime.statement", "localdatetime.transaction",
        "localtime.realtime", "localtime.statement", "localtime.transaction", "time.realtime",
        "time.statement", "time.transaction", "duration.between", "duration.inmonths", "duration.indays",
        "duration.inseconds", "point.distance", "point.withinbbox", "vector.similarity.cosine",
        "vector.similarity.euclidean",
        # FalkorDB
        "tojson", "indegree", "outdegree", "haslabels", "typeof",
    }
)  # fmt: skip
"""Built-in Cypher functions (Neo4j 5 and FalkorDB), lower-cased: built-in names are case-insensitive."""

_APOC_FAMILIES: dict[str, str] = {
    "load": "reads files or URLs from the database server",
    "import": "reads files or URLs from the database server",
    "export": "writes files on the database server",
    "periodic": "runs batched writes in the background",
    "cypher": "runs Cypher text that the guard cannot check",
    "do": "runs Cypher text that the guard cannot check",
    "when": "runs Cypher text that the guard cannot check",
    "create": "writes nodes, relationships or properties",
    "merge": "writes nodes or relationships",
    "refactor": "rewrites the graph",
    "nodes": "can delete or link nodes",
    "atomic": "writes properties",
    "lock": "takes locks",
    "trigger": "installs triggers that run on every write",
    "schema": "changes indexes and constraints",
    "systemdb": "runs system-database commands",
    "custom": "declares new procedures",
    "util": "can sleep or validate with side effects",
}


def procedure_refusal(name: str, allowed: frozenset[str]) -> str | None:
    """Why ``CALL name(...)`` is refused, or ``None`` when ``name`` is on the allow-list."""
    if name in allowed:
        return None
    lowered = name.lower()
    listing = ", ".join(sorted(allowed)) or "none"
    if lowered.startswith("dbms."):
        return (
            f"procedure {name} is refused: dbms.* procedures administer the server (users, queries, config)"
        )
    if lowered.startswith("apoc."):
        family = lowered.split(".")[1]
        why = _APOC_FAMILIES.get(family)
        if why is not None:
            return f"procedure {name} is refused: apoc.{family}.* {why}"
        return f"procedure {name} is refused: it is not on the procedures allow-list ({listing})"
    if lowered.startswith("db."):
        return f"procedure {name} is refused: only these db.* procedures are allowed: {listing}"
    return f"procedure {name} is refused: it is not on the procedures allow-list ({listing})"


def function_refusal(name: str, apoc_functions: frozenset[str]) -> str | None:
    """Why calling function ``name`` is refused, or ``None`` when it is built in or allow-listed."""
    lowered = name.lower()
    if lowered in BUILTIN_FUNCTIONS or name in apoc_functions:
        return None
    if lowered.startswith("apoc."):
        family = lowered.split(".")[1]
        why = _APOC_FAMILIES.get(family)
        if why is not None:
            return f"function {name} is refused: apoc.{family}.* {why}"
        return f"function {name} is refused: it is not on the allow-list of pure APOC functions"
    if "." in name:
        return f"function {name} is refused: it is not a built-in function nor on the APOC allow-list"
    return f"function {name}() is refused: it is not a built-in Cypher function"
