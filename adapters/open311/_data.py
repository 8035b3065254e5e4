"""Kota Makassar as the Open311 simulator sees it: districts, agencies, the service list with
its attributes, and the texts and names it files requests with. Illustrative; the names
belong to nobody and e-mail uses example.id."""

from __future__ import annotations

from typing import Any

CENTRE = (-5.1477, 119.4327)
# kecamatan -> (streets, zipcode); illustrative.
DISTRICTS: dict[str, tuple[tuple[str, ...], str]] = {
    "Rappocini": (("Jl. Sultan Alauddin", "Jl. A. P. Pettarani", "Jl. Rappocini Raya"), "90222"),
    "Panakkukang": (("Jl. Urip Sumoharjo", "Jl. Boulevard", "Jl. Pengayoman"), "90231"),
    "Tamalate": (("Jl. Daeng Tata", "Jl. Metro Tanjung Bunga", "Jl. Malengkeri"), "90224"),
    "Mamajang": (("Jl. Veteran Selatan", "Jl. Cendrawasih", "Jl. Baji Gau"), "90131"),
    "Ujung Pandang": (("Jl. Penghibur", "Jl. Somba Opu", "Jl. Jenderal Sudirman"), "90111"),
    "Manggala": (("Jl. Abdullah Daeng Sirua", "Jl. Antang Raya", "Jl. Batua Raya"), "90234"),
}
AGENCIES = {
    "DPU": "Dinas Pekerjaan Umum Kota Makassar",
    "DLH": "Dinas Lingkungan Hidup Kota Makassar",
    "DISHUB": "Dinas Perhubungan Kota Makassar",
    "DPK": "Dinas Pertamanan dan Kebersihan Kota Makassar",
}
# service_code -> (name, description, group, type, agency code, keywords, texts of requests)
SERVICES: dict[str, tuple[str, str, str, str, str, str, tuple[str, ...]]] = {
    "JLN-01": (
        "Jalan Rusak",
        "Jalan berlubang, aspal mengelupas atau amblas.",
        "jalan",
        "realtime",
        "DPU",
        "lubang, aspal, jalan",
        ("Jalan berlubang cukup dalam di {jalan}, membahayakan pengendara motor.", "Aspal amblas di {jalan}."),
    ),
    "SMP-01": (
        "Sampah Menumpuk",
        "Sampah tidak terangkut di tempat umum.",
        "kebersihan",
        "realtime",
        "DLH",
        "sampah, tps, bau",
        ("Sampah menumpuk tiga hari di dekat {jalan}, mulai berbau.", "TPS di {jalan} penuh dan meluber."),
    ),
    "PJU-01": (
        "Lampu Jalan Mati",
        "Lampu penerangan jalan umum tidak menyala.",
        "penerangan",
        "realtime",
        "DISHUB",
        "lampu, pju, gelap",
        ("Lampu jalan di {jalan} mati sejak seminggu, gelap di malam hari.",),
    ),
    "DRN-01": (
        "Saluran Tersumbat",
        "Drainase tersumbat atau meluap saat hujan.",
        "drainase",
        "realtime",
        "DPU",
        "got, banjir, drainase",
        ("Got di {jalan} tersumbat, air meluap ke jalan saat hujan.",),
    ),
    "PHN-01": (
        "Pohon Tumbang",
        "Pohon tumbang atau dahan rawan patah.",
        "taman",
        "batch",
        "DPK",
        "pohon, dahan, taman",
        ("Dahan pohon besar di {jalan} hampir patah, rawan menimpa pengguna jalan.",),
    ),
}
# service_code -> its attributes (GET /services/{code}.json); the services with metadata=true.
ATTRIBUTES: dict[str, list[dict[str, Any]]] = {
    "JLN-01": [
        {
            "variable": True,
            "code": "TINGKAT",
            "datatype": "singlevaluelist",
            "required": True,
            "datatype_description": None,
            "order": 1,
            "description": "Seberapa parah kerusakannya?",
            "values": [
                {"key": "ringan", "name": "Ringan"},
                {"key": "sedang", "name": "Sedang"},
                {"key": "berat", "name": "Berat"},
            ],
        }
    ],
    "PJU-01": [
        {
            "variable": True,
            "code": "NOMOR_TIANG",
            "datatype": "string",
            "required": False,
            "datatype_description": "Nomor yang tertera di tiang lampu, bila terlihat",
            "order": 1,
            "description": "Nomor tiang lampu",
            "values": [],
        }
    ],
}
SERVICE_NOTICES = {
    "realtime": "Laporan diteruskan ke {agency}; petugas meninjau lokasi dalam 3 hari kerja.",
    "batch": "Laporan diterima dan akan diproses pada pemrosesan berkala berikutnya.",
}
OFFICER_NOTES = (
    "Petugas {agency} sudah meninjau lokasi; penanganan dijadwalkan.",
    "Laporan sedang ditangani oleh regu lapangan.",
)
CLOSING_NOTES = ("Sudah diperbaiki oleh petugas.", "Selesai ditangani, terima kasih atas laporannya.", "Laporan ganda.")
FIRST_NAMES = ("Andi", "Nurul", "Muhammad", "Sitti", "Ahmad", "Rahmawati", "Irwan", "Fitri")
LAST_NAMES = ("Rahman", "Syamsuddin", "Hasanuddin", "Tenri", "Mappaseng", "Latif", "Amir")
